"""The decisions on audit.html: keep / drop / relabel on every flagged image's tile, and a
"Save decisions.csv" button that downloads the choices (``path,decision,label``), which
``imgclf train DATA --decisions decisions.csv`` applies at read time.

Plain JavaScript inside the page (no external resource: the file stays the whole page). The
controls are built by the script from each tile's ``data-path`` (as issues.csv prints it),
``data-label`` and ``data-suggested`` (a label issue's suggestion, preselected), and the class
names from a JSON block; everything from the user reaches the page escaped (attributes through
``esc``, the JSON with ``<``, ``>`` and ``&`` as ``\\u`` escapes) and the script sets it as text
and values, never as HTML. Choices are remembered in localStorage, keyed by the audit, so a
reload keeps them.
"""

from __future__ import annotations

import json

from imgclf.audit.result import Audit
from imgclf.evaluate.html_parts import esc

STYLE = """<style>
#decisions{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid #d9e2ec;
 padding:8px 0;display:flex;gap:14px;align-items:center;flex-wrap:wrap}
#decisions button{font:inherit;padding:4px 12px;border-radius:6px;border:1px solid #2563eb;
 background:#2563eb;color:#fff;cursor:pointer}
#decisions #forget-decisions{background:#fff;color:#2563eb}
.decide{display:flex;flex-wrap:wrap;gap:2px 6px;margin-top:3px}
.decide label{white-space:nowrap}.decide select{max-width:128px;font-size:1em}
.tile.drop img{opacity:.35;border-color:#8d2b0b}.tile.relabel img{border-color:#2563eb}
.tile.keep img{border-color:#2f855a}
</style>"""

_SCRIPT = """<script>
(function () {
  "use strict";
  var bar = document.getElementById("decisions");
  var classes = JSON.parse(document.getElementById("audit-classes").textContent);
  var storeKey = "imgclf-audit-decisions:" + bar.dataset.audit;
  var choices = {};
  try { choices = JSON.parse(window.localStorage.getItem(storeKey) || "{}") || {}; }
  catch (e) { choices = {}; }
  var tiles = {};
  var count = 0;

  function remember() {
    try { window.localStorage.setItem(storeKey, JSON.stringify(choices)); } catch (e) {}
  }

  function show(path) {
    var choice = choices[path];
    (tiles[path] || []).forEach(function (tile) {
      tile.classList.remove("keep", "drop", "relabel");
      tile.querySelectorAll("input").forEach(function (input) {
        input.checked = !!choice && input.value === choice.decision;
      });
      if (choice) { tile.classList.add(choice.decision); }
      var select = tile.querySelector("select");
      var relabel = choice && choice.decision === "relabel";
      select.value = relabel ? choice.label : select.dataset.initial;
    });
  }

  function tally() {
    var n = { keep: 0, drop: 0, relabel: 0 };
    Object.keys(choices).forEach(function (p) { n[choices[p].decision] += 1; });
    document.getElementById("decided").textContent = Object.keys(choices).length +
      " decided: " + n.keep + " keep, " + n.drop + " drop, " + n.relabel + " relabel";
  }

  function choose(path, decision, label) {
    choices[path] = decision === "relabel" ? { decision: decision, label: label }
                                           : { decision: decision };
    remember();
    show(path);
    tally();
  }

  function controls(tile) {
    var path = tile.dataset.path;
    var name = "decide-" + (count += 1);
    var box = document.createElement("div");
    box.className = "decide";
    var select = document.createElement("select");
    select.setAttribute("aria-label", "new label");
    classes.forEach(function (label) {
      var option = document.createElement("option");
      option.value = label;
      option.textContent = label;
      select.appendChild(option);
    });
    select.value = tile.dataset.suggested || tile.dataset.label || classes[0];
    select.dataset.initial = select.value;
    ["keep", "drop", "relabel"].forEach(function (decision) {
      var label = document.createElement("label");
      var input = document.createElement("input");
      input.type = "radio";
      input.name = name;
      input.value = decision;
      input.addEventListener("change", function () { choose(path, decision, select.value); });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + decision));
      box.appendChild(label);
    });
    select.addEventListener("change", function () { choose(path, "relabel", select.value); });
    box.appendChild(select);
    tile.appendChild(box);
    (tiles[path] = tiles[path] || []).push(tile);
  }

  function cell(text) {
    return /[",\\r\\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function save() {
    var lines = ["path,decision,label"];
    Object.keys(choices).sort().forEach(function (path) {
      var choice = choices[path];
      var label = choice.decision === "relabel" ? choice.label : "";
      lines.push([path, choice.decision, label].map(cell).join(","));
    });
    var blob = new Blob([lines.join("\\n") + "\\n"], { type: "text/csv" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "decisions.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  }

  document.querySelectorAll(".tile[data-path]").forEach(controls);
  Object.keys(tiles).forEach(show);
  tally();
  document.getElementById("save-decisions").addEventListener("click", save);
  document.getElementById("forget-decisions").addEventListener("click", function () {
    var decided = Object.keys(choices);
    choices = {};
    remember();
    decided.forEach(show);
    tally();
  });
}());
</script>"""


def decisions_bar(audit: Audit, created: str) -> str:
    """The bar at the top of the page: what the controls are for, the count and the buttons;
    ``created`` (the page's time) keys the choices remembered for this audit."""
    key = f"{audit.data.source}|{created}"
    return (
        f'<div id="decisions" data-audit="{esc(key)}"><button type="button" '
        'id="save-decisions">Save decisions.csv</button><span id="decided"></span>'
        '<button type="button" id="forget-decisions">Forget choices</button>'
        '<span class="muted">Mark flagged images keep, drop or relabel; '
        "<code>imgclf train DATA --decisions decisions.csv</code> applies them when the data "
        "is read (no file is moved).</span></div>"
    )


def decisions_script(audit: Audit) -> str:
    """The class names (as JSON, escaped for a script block) and the script."""
    names = json.dumps(list(audit.data.classes), ensure_ascii=False)
    names = names.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="audit-classes">{names}</script>{_SCRIPT}'
