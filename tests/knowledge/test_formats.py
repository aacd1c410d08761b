"""Text documents as labs really have them: encodings, Markdown's variants, HTML, reStructuredText, notebooks.

Each format test asks one question a user would: is the fact still there, under the right section, and is
nothing that is not text (markup, navigation, directive syntax) indexed as words? The last tests use
material nobody here wrote: installed packages' READMEs rendered to HTML by markdown-it-py, their
reStructuredText READMEs, and the HTML pages Python's pydoc writes for standard-library modules.
"""

from __future__ import annotations

import json
import pydoc
import re
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from knowledge.chunking import WINDOW, chunk_document
from knowledge.embeddings import OnnxEmbedder
from knowledge.loaders import UnreadableDocument, load_document
from knowledge.package_docs import export_readmes

from .conftest import load_file, sections_of

FOREIGN = Path(__file__).parent / "foreign" / "questions.yaml"
FACT = "The naïve résumé of node03 \u2013 storage 4 TB."  # an en dash: cp1252 has it at 0x96, Latin-1 not


@pytest.mark.parametrize(
    ("encoding", "mark"),
    [("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-32-le", b"\xff\xfe\0\0"),
     ("utf-16-le", b""), ("utf-16-be", b""), ("cp1252", b"")],
)  # fmt: skip
def test_unicode_forms_and_windows_text_read_the_same(tmp_path: Path, encoding: str, mark: bytes) -> None:
    # PowerShell redirects and Notepad write UTF-16 with a mark; old Windows editors wrote cp1252 without one.
    raw = f"---\nowner: storage team\n---\n# Storage notes\r\n\r\n{FACT}\r\n"
    doc = load_file(tmp_path, "notes.md", mark + raw.encode(encoding))
    assert doc.meta == {"owner": "storage team"}, "front matter is found after a byte-order mark"
    assert doc.title == "Storage notes" and doc.text.endswith(FACT) and "\r" not in doc.text


def test_an_html_page_s_declared_charset_is_honoured(tmp_path: Path) -> None:
    page = '<html><head><meta charset="koi8-r"></head><body><h1>Узел</h1><p>Резервная копия в 02:00.</p></body></html>'
    doc = load_file(tmp_path, "node.html", page.encode("koi8-r"))
    assert doc.title == "Узел" and "Резервная копия в 02:00." in doc.text


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4, b"PK\x03\x04" + bytes(64), bytes(range(1, 9)) * 300],
)
def test_binary_files_are_refused_with_the_reason(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(UnreadableDocument, match=r"diagram\.md is not a text document: .*(NUL|control)"):
        load_file(tmp_path, "diagram.md", content)


def test_markdown_as_readmes_write_it(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    text = """<h1 align="center"><img src="logo.svg" alt="Lab logo" width="40"> Storage guide</h1>

<!-- TODO before publishing: the old MinIO password is in vault, remove this note -->

Object storage
--------------

MinIO runs on node03 with 4 TB, behind `<https://minio.lab>`.
Clients use a `Map<String, Bucket>` and List<String> of buckets.

<details><summary>Ports</summary>

The console listens on 9001.

</details>

Quotas
======

| Group | Quota |
|---|---|
| astro | 2 TB<br>hard limit |
| bio | 500 GB |

<table><tr><th>Bucket</th><th>Owner</th></tr><tr><td>desi-dr1</td><td>survey team</td></tr>
<tr><td>scratch</td><td>everyone</td></tr></table>

```html
<div class="kept">code stays as written</div>
```
"""
    doc = load_file(tmp_path, "storage.md", text)
    assert doc.title == "Storage guide", "an HTML h1 is the title, without its logo"
    assert "TODO" not in doc.text and "vault" not in doc.text, "an HTML comment is a note to editors, not content"
    sections = sections_of(doc, embedder)
    assert set(sections) == {"Object storage", "Quotas"}, "underlined headings are sections"
    storage = sections["Object storage"]
    assert "9001" in storage and "Ports" in storage and "<details>" not in storage
    assert "`Map<String, Bucket>`" in storage and "List<String>" in storage and "<https://minio.lab>" in storage
    chunks = chunk_document(doc, embedder.count_tokens)
    rows = [c.text for c in chunks if c.text.startswith("|")]
    assert "| Group | Quota |\n|---|---|\n| astro | 2 TB hard limit |" in rows, "a <br> does not end a table row"
    assert "| Bucket | Owner |\n|---|---|\n| desi-dr1 | survey team |" in rows, "an HTML table is rows too"
    assert any('<div class="kept">code stays as written</div>' in c.text for c in chunks)


def test_an_html_page_is_its_content_without_the_site_around_it(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    page = """<!DOCTYPE html><html><head><title>GPU runbook - Lab Wiki</title><style>h1{color:red}</style></head>
<body><header><a href="/">Lab Wiki</a></header>
<nav><ul><li><a href="/vms">Virtual machines</a></li><li><a href="/backups">Backups</a></li></ul></nav>
<main><h1>GPU runbook<a class="headerlink" href="#gpu">¶</a></h1>
<p>The GPU node <code>gpu01</code> serves Ollama
   on port 11434.</p>
<h2>Restart</h2>
<pre><code class="language-bash"># drain the queue first
systemctl restart ollama
</code></pre>
<table><thead><tr><th>Model</th><th>Size</th></tr></thead>
<tbody><tr><td>qwen2.5-coder</td><td>1.5B</td></tr><tr><td>llama3</td><td>8B</td></tr></tbody></table>
<dl><dt>Owner</dt><dd>research computing</dd></dl>
<ol><li>Check <b>nvidia-smi</b><ul><li>no process holds the GPU</li></ul></li><li>Restart</li></ol>
</main><footer>Privacy policy</footer><script>track()</script></body></html>"""
    doc = load_file(tmp_path, "gpu.html", page)
    assert doc.title == "GPU runbook", "the permalink sign is not part of the heading"
    for chrome in ("Lab Wiki", "Virtual machines", "Privacy policy", "track()", "color:red"):
        assert chrome not in doc.text
    sections = sections_of(doc, embedder)
    assert set(sections) == {"", "Restart"}, "a '# comment' in <pre> is code, not a heading"
    assert "The GPU node `gpu01` serves Ollama on port 11434." in sections[""]
    restart = sections["Restart"]
    assert "```bash\n# drain the queue first\nsystemctl restart ollama\n```" in restart
    assert "| Model | Size |\n|---|---|\n| llama3 | 8B |" in restart
    assert "- Owner: research computing" in restart
    assert "1. Check nvidia-smi\n  - no process holds the GPU" in restart and "2. Restart" in restart

    # A page that does not mark its content keeps its header, loses its navigation, and is titled by <title>.
    plain = load_file(tmp_path, "plain.html", page.replace("<main>", "<div>").replace("</main>", "</div>")
                  .replace("<h1>GPU runbook", "<p>GPU runbook").replace("</h1>", "</p>"))  # fmt: skip
    assert plain.title == "GPU runbook - Lab Wiki" and "Lab Wiki" in plain.text
    assert "Virtual machines" not in plain.text and "qwen2.5-coder" in plain.text


def test_a_wiki_page_loses_its_furniture(tmp_path: Path) -> None:
    # MediaWiki's shape: "[edit]" links in every heading, a table of contents, a "Retrieved from" footer.
    page = """<html><head><title>Backups - LabWiki</title></head><body>
<div id="mw-navigation"><h2>Navigation menu</h2><div role="navigation"><ul><li>Main page</li></ul></div></div>
<div id="content" class="mw-body" role="main"><h1 id="firstHeading">Backups</h1>
<div id="siteSub" class="noprint">From LabWiki</div>
<div id="toc" class="toc"><div class="toctitle"><h2>Contents</h2></div><ul><li>1 Schedule</li></ul></div>
<h2><span class="mw-headline">Schedule</span><span class="mw-editsection">[<a href="/edit">edit</a>]</span></h2>
<p>Nightly at 01:00 to pbs01.</p><div class="printfooter">Retrieved from "https://wiki/Backups"</div>
</div></body></html>"""
    assert load_file(tmp_path, "backups.html", page).text == "# Backups\n\n## Schedule\n\nNightly at 01:00 to pbs01."


def test_generated_api_pages_lose_their_source_links(tmp_path: Path) -> None:
    # The shapes of Node.js's API pages (/usr/share/doc/nodejs/api) and of Sphinx's viewcode extension.
    node = """<html><body><div id="apicontent"><h2>Stream<a class="srclink" href="https://github.com/x">[src]</a>
<span><a class="mark" href="#stream" id="stream">#</a></span><a aria-hidden="true" class="legacy" id="s"></a></h2>
<p>A stream is an abstract interface.</p></div></body></html>"""
    assert load_file(tmp_path, "stream.html", node).text == "## Stream\n\nA stream is an abstract interface."
    sphinx = """<html><body><main><h1>jobs<a class="headerlink" href="#jobs">¶</a></h1>
<dl class="py function"><dt class="sig sig-object py" id="jobs.submit"><span class="sig-name descname">
<span class="pre">submit</span></span>(<em>entrypoint</em>)<a class="reference internal" href="_modules/jobs.html">
<span class="viewcode-link"><span class="pre">[source]</span></span></a><a class="headerlink" href="#jobs.submit">¶</a>
</dt><dd><p>Submit a job to the cluster.</p></dd></dl></main></body></html>"""
    text = load_file(tmp_path, "jobs.html", sphinx).text
    assert "submit" in text and "Submit a job to the cluster." in text and "[source]" not in text


def test_restructuredtext_constructs_become_text(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    text = """==================
Ray cluster guide
==================

.. contents:: On this page
   :depth: 2

.. _submitting:

Submitting
==========

Submit through the Jobs API on port 8265, see :ref:`quotas <quota-page>` and
`the Ray docs <https://docs.ray.io>`_. The entry point is :func:`~ray.job_submission.JobSubmissionClient`.

.. code-block:: bash
   :linenos:

   # one job per experiment
   ray job submit -- python train.py

.. note::
   Jobs asking for more than 4 GPUs need an approval.

.. warning::

   Never cancel with ``kill``:

   .. code-block:: bash

      ray job stop <id>

Example session::

    $ ray job list

.. |limit| replace:: eight CPUs

Queues
------

+------------+-------------------+
| Queue      | Limit             |
+============+===================+
| default    | |limit| per user  |
+------------+-------------------+
| gpu        | 2 GPUs, approval  |
|            | over 4            |
+------------+-------------------+

=========  ==========
Partition  Nodes
=========  ==========
batch      node01-04
debug      node05
=========  ==========

.. list-table:: Storage
   :header-rows: 1

   * - Path
     - Purpose
   * - /scratch
     - temporary files

.. csv-table:: Contacts
   :header: "Role", "Who"

   "on call", "ops@lab.example"

:Owner: research computing

.. This comment is for editors only.
"""
    doc = load_file(tmp_path, "ray.rst", text)
    assert doc.title == "Ray cluster guide"
    for syntax in (".. ", ":ref:", ":func:", "`_", "|limit|", ":linenos:", "+----", "On this page", "editors only"):
        assert syntax not in doc.text, syntax
    sections = sections_of(doc, embedder)
    assert set(sections) == {"Submitting", "Submitting > Queues"}
    submitting = sections["Submitting"]
    assert "see quotas and the Ray docs." in " ".join(submitting.split())
    assert "`JobSubmissionClient`" in submitting
    assert "```bash\n# one job per experiment\nray job submit -- python train.py\n```" in submitting
    assert "Note: Jobs asking for more than 4 GPUs need an approval." in submitting
    assert "Warning: Never cancel with `kill`:\n\n```bash\nray job stop <id>\n```" in submitting, "nested directives"
    assert "Example session:\n\n```\n$ ray job list\n```" in submitting
    # Each row of a longer table is a chunk under its header; a one-row table stays with its caption.
    rows = [c.text for c in chunk_document(doc, embedder.count_tokens) if c.text.startswith("|")]
    for row in ("| Queue | Limit |\n|---|---|\n| default | eight CPUs per user |",
                "| Queue | Limit |\n|---|---|\n| gpu | 2 GPUs, approval over 4 |",
                "| Partition | Nodes |\n|---|---|\n| debug | node05 |"):  # fmt: skip
        assert row in rows, row
    queues = sections["Submitting > Queues"]
    assert "Storage:\n\n| Path | Purpose |\n|---|---|\n| /scratch | temporary files |" in queues
    assert "Contacts:\n\n| Role | Who |\n|---|---|\n| on call | ops@lab.example |" in queues
    assert "Owner: research computing" in sections["Submitting > Queues"]


def test_a_notebook_is_its_cells_without_outputs(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    notebook = {
        "nbformat": 4,
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "cells": [
            {"cell_type": "markdown", "source": ["# Redshift queries\n", "\n", "Read-only access to DESI DR1."]},
            {"cell_type": "markdown", "source": "## Counting\nCount galaxies with a good fit (`ZWARN = 0`)."},
            {"cell_type": "code", "source": ["# ZWARN 0 means no warning\n", "run('SELECT count(*) ...')"],
             "outputs": [{"output_type": "stream", "text": ["1234567 rows\n"]},
                         {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}}]},
        ],
    }  # fmt: skip
    doc = load_file(tmp_path, "queries.ipynb", json.dumps(notebook))
    assert doc.title == "Redshift queries"
    sections = sections_of(doc, embedder)
    assert set(sections) == {"", "Counting"}, "a '# comment' in a code cell is no heading"
    assert "```python\n# ZWARN 0 means no warning\nrun('SELECT count(*) ...')\n```" in sections["Counting"]
    assert "1234567" not in doc.text and "iVBOR" not in doc.text
    cells = [{"cell_type": "heading", "level": 1, "source": "Old notebook"},
             {"cell_type": "code", "input": "x = 1", "outputs": []}]  # fmt: skip
    v3 = {"nbformat": 3, "worksheets": [{"cells": cells}]}
    assert load_file(tmp_path, "old.ipynb", json.dumps(v3)).title == "Old notebook"
    with pytest.raises(UnreadableDocument, match=r"broken\.ipynb is not a Jupyter notebook: it is not valid JSON"):
        load_file(tmp_path, "broken.ipynb", '{"cells": [')


def test_one_endless_line_is_chunked_to_the_window_without_losing_a_word(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    # A log or a minified page: no sentence, no newline. Cutting it used to count tokens once per word.
    words = [f"event{i}=ok" for i in range(20000)] + ["x" * 3000]
    doc = load_file(tmp_path, "events.txt", " ".join(words))
    chunks = chunk_document(doc, embedder.count_tokens)
    assert all(embedder.count_tokens(c.embed_text) <= WINDOW for c in chunks)
    assert "".join(" ".join(c.text for c in chunks).split()) == "".join(words)


def _foreign_sources() -> list[str]:
    return list(yaml.safe_load(FOREIGN.read_text())["sources"])


def test_package_readmes_rendered_to_html_read_like_their_markdown(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    # markdown-it-py's rendering of READMEs nobody here wrote: the HTML loader must find the same title, the
    # same sections in the same order and the same table rows as the Markdown loader finds in the original.
    render = MarkdownIt("commonmark").enable("table")
    compared = 0
    for doc in export_readmes(_foreign_sources(), tmp_path / "md"):
        if doc.suffix != ".md":
            continue
        page = tmp_path / f"{doc.name}.html"
        page.write_text(f"<html><body>{render.render(doc.text)}</body></html>", encoding="utf-8")
        md = load_document(tmp_path / "md" / f"{doc.name}.md")
        html = load_document(page)
        assert html.title == md.title, doc.name
        md_chunks, html_chunks = (chunk_document(d, embedder.count_tokens) for d in (md, html))
        assert list(dict.fromkeys(c.section for c in html_chunks)) == list(dict.fromkeys(c.section for c in md_chunks))
        md_rows = sum(c.text.startswith("|") for c in md_chunks)
        assert sum(c.text.startswith("|") for c in html_chunks) == md_rows, doc.name
        assert not re.search(r"</?(p|div|table|tr|td|a|em|strong|ul|li|h\d)\b", html.text), doc.name
        compared += 1
    assert compared >= 10


def test_restructuredtext_readmes_leave_no_syntax_behind(tmp_path: Path) -> None:
    docs = [d for d in export_readmes(_foreign_sources(), tmp_path) if d.suffix == ".rst"]
    assert len(docs) >= 3
    for doc in docs:
        text = load_document(tmp_path / f"{doc.name}.rst").text
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        assert not re.search(r"^\s*\.\. |:(ref|doc|class|func|meth):`|`_|^\s*\+[-=]{3,}\+", prose, re.M), doc.name


@pytest.mark.parametrize("module", ["json", "shutil", "pathlib"])
def test_pydoc_pages_read_as_text(tmp_path: Path, embedder: OnnxEmbedder, module: str) -> None:
    # pydoc lays its pages out with nested tables: read as a grid, every class would be one giant "row".
    obj = __import__(module)
    page = tmp_path / f"{module}.html"
    page.write_text(pydoc.HTMLDoc().page(module, pydoc.HTMLDoc().docmodule(obj)), encoding="utf-8")
    doc = load_document(page)
    assert doc.title == f"Python: {module}" and not re.search(r"</?(table|tr|td|font|span|a|dl)\b", doc.text)
    names = [n for n in getattr(obj, "__all__", []) if callable(getattr(obj, n, None))]
    assert names and all(name in doc.text for name in names)
    assert all(embedder.count_tokens(c.embed_text) <= WINDOW for c in chunk_document(doc, embedder.count_tokens))


@pytest.mark.parametrize(
    "notebook",
    [{"cells": [{"cell_type": "heading", "level": "x", "source": "T"}]},
     {"cells": [{"cell_type": "heading", "level": None, "source": "T"}]},
     {"cells": [{"cell_type": "markdown", "source": [1, 2]}]}, {"cells": [None, 3, "x"]}, {"worksheets": [None]},
     {"worksheets": "x"}, {"metadata": "x", "cells": []},
     {"metadata": {"kernelspec": ["a"]}, "cells": [{"cell_type": "code", "source": "x"}]}, [1, 2]],
)  # fmt: skip
def test_hand_edited_notebooks_are_read_or_refused_never_crash(tmp_path: Path, notebook: object) -> None:
    try:
        doc = load_file(tmp_path, "odd.ipynb", json.dumps(notebook))
    except UnreadableDocument as exc:
        assert "odd.ipynb is not a Jupyter notebook" in str(exc)
    else:
        assert isinstance(doc.text, str)
