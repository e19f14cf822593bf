// Render every plot of a `dvc plots show` page with the Vega libraries the page itself holds.
const fs = require("fs"), vm = require("vm");
const html = fs.readFileSync(process.argv[2], "utf8");
const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(m => m[1]);
globalThis.self = globalThis;
for (const code of scripts.slice(0, 2)) vm.runInThisContext(code);  // vega, vega-lite
const specs = [...html.matchAll(/var spec = ([\s\S]*?);\s*vegaEmbed/g)].map(m => JSON.parse(m[1]));
(async () => {
  const out = [];
  for (const spec of specs) {
    const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), {renderer: "none"});
    out.push(await view.toSVG());
  }
  console.log(JSON.stringify(out.map(svg => ({paths: (svg.match(/<path/g) || []).length, bytes: svg.length}))));
})().catch(e => { console.error(e.message); process.exit(1); });
