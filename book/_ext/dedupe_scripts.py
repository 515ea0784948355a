"""Sphinx extension: drop duplicate <script> entries from each page.

Sphinx 7.4 (the newest that Jupyter Book 1.x allows) adds one inline script twice
(`Builder.prepare_writing` re-adds it with an empty filename next to the original),
so every page throws "Identifier 'THEBE_JS_URL' has already been declared".
"""


def _dedupe(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
