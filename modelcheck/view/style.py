"""The page's one stylesheet, inline: light by default, dark where the reader's system prefers it."""

from __future__ import annotations

_RULES = """
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--panel:#f6f8fa;
--grid:#d8dee4;--pass:#1a7f37;--fail:#cf222e;--warn:#9a6700;--err:#8250df;--skip:#59636e}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;
--panel:#151b23;--grid:#30363d;--pass:#3fb950;--fail:#f85149;--warn:#d29922;--err:#a371f7;--skip:#9198a1}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:1rem 1.5rem 3rem;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:.2rem 0 .5rem}
h2{font-size:1.1rem;margin:0;display:inline}
h3{font-size:.95rem;margin:.6rem 0 .2rem}
small,.muted{color:var(--muted)}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{border-bottom:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.msg td{font-size:12px;color:var(--muted);overflow-wrap:anywhere;padding-top:0;padding-left:1.2rem}
table.checks tr:has(+tr.msg) td{border-bottom:none}
table.facts th{width:11rem}
table.facts td{overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:1em;padding:0 .6em;font-size:12px;font-weight:600;color:#fff;
background:var(--skip);white-space:nowrap}
.s-passed{--c:var(--pass)}
.s-failed{--c:var(--fail)}
.s-warned,.s-inconclusive{--c:var(--warn)}
.s-error{--c:var(--err)}
.s-skipped,.s-not-run{--c:var(--skip)}
.badge[class*=s-]{background:var(--c)}
tr[class*=s-] td:first-child{border-left:3px solid var(--c)}
.totals .badge{font-size:13px;margin-right:.3rem}
nav ul{list-style:none;padding:0;columns:2 24rem}
nav li{margin:.1rem 0}
nav a{color:inherit;text-decoration:none}
section.gate{border:1px solid var(--line);border-radius:8px;margin:1rem 0;padding:.5rem 1rem;
content-visibility:auto;contain-intrinsic-size:auto 600px}
section.gate>details>summary{cursor:pointer;padding:.3rem 0}
details.env,details.identity{margin:.5rem 0}
details.env>summary,details.identity>summary{cursor:pointer;color:var(--muted)}
ul.stages{list-style:none;padding:0;margin:.4rem 0}
ul.stages li{margin:.15rem 0}
.why{background:var(--panel);border-radius:6px;padding:.2rem .8rem;margin:.5rem 0}
.why ul{padding-left:1.2rem}
.gate-error{color:var(--fail)}
.plots{display:flex;flex-wrap:wrap;gap:1rem;margin:.6rem 0}
figure.plot{margin:0;padding:.5rem;background:var(--panel);border-radius:6px;flex:1 1 420px;max-width:100%}
figure.plot figcaption{font-size:12px;color:var(--muted);margin-bottom:.3rem}
figure.plot svg{display:block;max-width:100%;height:auto;color:var(--fg)}
figure.plot svg *{stroke-linejoin:round;stroke-linecap:butt}
.worst td{overflow-wrap:anywhere;max-width:40rem;font-size:12px}
"""
#: The stylesheet as it goes into the page (one line per rule).
CSS = _RULES.strip()
