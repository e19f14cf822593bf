"""The Markdown license tables of ``docs/MEDIA.md``, generated from a kind's catalogue
(:func:`license_table`)."""

from __future__ import annotations

from fourreal.data_making.media.kinds import VIDEOS, Kind

def _md(text: str) -> str:
    """``text`` for a Markdown table cell."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def license_table(kind: Kind = VIDEOS) -> str:
    """The Markdown tables of ``docs/MEDIA.md`` for ``kind``: every file with its package,
    duration (videos), license and content, then the files of those packages that are left out."""
    catalogue = kind.catalogue
    seconds = "seconds | " if kind.timed else ""
    rows = [f"| file | package | {seconds}license | content |", "|---|---|---|---|" + ("---|" if kind.timed else "")]
    for pkg in catalogue:
        src = f"{pkg.manager} `{pkg.package}` {pkg.version}" + (" (sdist)" if pkg.sdist else "")
        src += " *(optional)*" if pkg.optional else ""
        for f in pkg.files:
            duration = f"{f.seconds:g} | " if kind.timed else ""
            rows.append(f"| `{f.out_name}` | {src} | {duration}{_md(f.license)} | {_md(f.description)} |")
    count = sum(len(p.files) for p in catalogue)
    if kind.timed:
        total = sum(f.seconds for p in catalogue for f in p.files)
        default = sum(f.seconds for p in catalogue if not p.optional for f in p.files)
        lines = [*rows, "", f"{count} files, {total / 60:.1f} minutes "
                 f"({default / 60:.1f} minutes without the optional packages).", ""]
    else:
        lines = [*rows, "", f"{count} files from {len(catalogue)} packages.", ""]
    if any(p.optional for p in catalogue):
        lines += ["Optional packages (gathered with `--all` or `--only NAME`):", ""]
        lines += [f"- `{p.package}`: {_md(p.why_optional)}" for p in catalogue if p.optional]
        lines += [""]
    lines += [f"{kind.name.capitalize()} in these packages that are not gathered:", ""]
    lines += [f"- `{p.package}`: {_md(item)}" for p in catalogue for item in p.left_out]
    return "\n".join(lines) + "\n"
