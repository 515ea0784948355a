"""Sphinx extension: let ipywidgets' embedded widgets typeset with MathJax 3.

The widget manager that renders saved widget state on the static site
(@jupyter-widgets/html-manager, ipywidgets 8) typesets every widget label through the
MathJax 2 API, ``MathJax.Hub.Queue([...])``. The book loads MathJax 3, which has no
``Hub``, so each slider label threw "Cannot read properties of undefined (reading
'Queue')". This adds a small inline script, before any other, that gives whatever object
sits at ``window.MathJax`` a ``Hub.Queue`` forwarding to MathJax 3's ``typesetPromise``.
"""

BRIDGE_JS = """
(function () {
  var current = window.MathJax, pending = [], timer = null;
  function ready(mj) { return mj && mj.typesetPromise && mj.startup && mj.startup.promise; }
  function flush() {
    var mj = current;
    if (!ready(mj)) { return false; }
    var elements = pending; pending = [];
    mj.startup.promise.then(function () { return mj.typesetPromise(elements); })
      .catch(function (err) { console.warn("MathJax typesetting of widget labels failed", err); });
    return true;
  }
  function queue(job) {
    if (job && job[2]) { pending.push(job[2]); }
    if (!flush() && timer === null) {
      timer = setInterval(function () { if (flush() || !pending.length) { clearInterval(timer); timer = null; } }, 100);
    }
  }
  function bridge(mj) {
    if (mj && typeof mj === "object" && !mj.Hub) {
      Object.defineProperty(mj, "Hub", { value: { Queue: queue }, enumerable: false, configurable: true });
    }
  }
  bridge(current);
  Object.defineProperty(window, "MathJax", {
    configurable: true, enumerable: true,
    get: function () { return current; },
    set: function (value) { current = value; bridge(value); }
  });
})();
"""


def setup(app):
    app.add_js_file(None, body=BRIDGE_JS, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
