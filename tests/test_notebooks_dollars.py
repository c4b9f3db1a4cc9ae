"""No prose a learner reads holds two `$`: JupyterLab would typeset the text between them as math.

Markdown cells and Markdown/HTML outputs are read as JupyterLab's MathJax reads them: code, and HTML
marked ``mathjax_ignore`` (pandas tables with ``display.html.use_mathjax`` off), are never math. An
escaped ``\\$`` is no protection in Markdown: JupyterLab's Markdown renderer turns it into a plain
``$`` before MathJax reads the page (seen in the browser test), so amounts are written "USD 40".
"""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EVERY_NOTEBOOK = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
DOLLAR = re.compile(r"(?<!\\)\$")


class _MathText(HTMLParser):
    """The text of an HTML fragment that MathJax would scan: not in code, pre, script, style, or an ignored class."""

    SKIP_TAGS = {"code", "pre", "script", "style", "textarea"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "col", "area", "base", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: does it (or an ancestor) hide its text from MathJax
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        hidden = (bool(self.stack) and self.stack[-1]) or tag in self.SKIP_TAGS or bool(
            {"mathjax_ignore", "tex2jax_ignore"} & set(classes))
        self.stack.append(hidden)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.text.append(data)


def math_text_of_html(fragment: str) -> str:
    parser = _MathText()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.text)


def math_text_of_markdown(text: str) -> str:
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)  # fenced code
    text = re.sub(r"(`+)(.+?)\1", "", text, flags=re.S)  # code spans
    text = text.replace("\\$", "$")  # what the Markdown renderer hands MathJax
    return math_text_of_html(text)  # Markdown may hold HTML too


def prose(notebook: dict) -> list[tuple[str, str]]:
    """(where, text MathJax would scan) for every Markdown cell and every Markdown or HTML output."""
    found = []
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            found.append((f"cell {i} (Markdown)", math_text_of_markdown("".join(cell["source"]))))
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data:
                found.append((f"cell {i} output (Markdown)", math_text_of_markdown("".join(data["text/markdown"]))))
            elif "text/html" in data:
                found.append((f"cell {i} output (HTML)", math_text_of_html("".join(data["text/html"]))))
    return found


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=lambda p: p.relative_to(NOTEBOOKS).as_posix())
def test_no_prose_holds_a_pair_of_dollars(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    typeset = [(where, text) for where, text in prose(notebook) if len(DOLLAR.findall(text)) >= 2]
    assert not typeset, "math where prose was meant: " + "; ".join(
        f"{where}: …{re.search(r'.{0,40}[$].{0,40}', text).group(0)}…" for where, text in typeset[:3])


@pytest.mark.parametrize(("text", "math"), [
    ("cards from $40.53 to $360.17", True),
    (r"cards from \$40.53 to \$360.17", True),  # escaped, and still typeset by JupyterLab
    ("cards from USD 40.53 to USD 360.17", False),
    ("`$x` and `$y`", False),
    ("```\nprint('$', '$')\n```\n", False),
    ("one $ sign only", False),
])
def test_markdown_dollars(text, math):
    assert (len(DOLLAR.findall(math_text_of_markdown(text))) >= 2) is math


@pytest.mark.parametrize(("html", "math"), [
    ("<table><td>under $2</td><td>the $2,900 purchase</td></table>", True),
    ('<table class="dataframe tex2jax_ignore mathjax_ignore"><td>$2</td><td>$2,900</td></table>', False),
    ("<p>run <code>echo $A $B</code></p>", False),
    ('<p class="mathjax_ignore">$4 and <b>$5</b></p><br><p>$6</p>', False),
    ('<p class="mathjax_ignore">$4</p><br><p>$5 and $6</p>', True),
])
def test_html_dollars(html, math):
    assert (len(DOLLAR.findall(math_text_of_html(html))) >= 2) is math
