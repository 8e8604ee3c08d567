"""The status page tests' shared parts: a state database with real runs against a copy
of the demo, and a reader of the page's HTML."""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from tests.support import run_demo, run_syncer

HOSTILE = "<script>alert(1)</script>.jpg"


@dataclass
class DemoState:
    root: Path
    policies: Path
    state: Path

    def syncer(self, *arguments, **options):
        return run_syncer(*arguments, policies=self.policies, state=self.state, cwd=self.root, **options)


def build_demo_state(root):
    """Run the demo in `root` (verify with its planted findings, a push, a drill), then:
    a file named HOSTILE at the authority and a verify that finds it missing here, a
    second push, a scrub, and a push that fails (its password file made readable by
    others). Return the DemoState."""
    root = Path(root)
    run_demo(root)
    demo = DemoState(root, root / "policies", root / ".demo" / "state")
    hostile = root / ".demo/authority/photos" / HOSTILE  # "/" can't be in a name: a folder `<script>alert(1)<`
    hostile.parent.mkdir(parents=True)
    hostile.write_bytes(b"not really a photo")
    (root / ".demo/local/notes/added-later.txt").write_text("a second push has something to add\n")
    assert demo.syncer("verify", "demo").exit_code == 1
    assert demo.syncer("push", "demo").exit_code == 0
    assert demo.syncer("scrub", "demo").exit_code == 0
    password = root / ".demo/secrets/restic.pass"
    password.chmod(0o644)
    failed = demo.syncer("push", "demo")
    password.chmod(0o600)
    assert failed.exit_code == 2 and "readable by group or others" in failed.stderr, failed.output
    return demo


@dataclass
class Table:
    classes: str
    header: list = field(default_factory=list)
    rows: list = field(default_factory=list)


class PageReader(HTMLParser):
    """Collect what a test checks: every start tag, the attributes that load something,
    the tables (header and rows of cell texts), the text, and the SVG charts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.loads, self.tables, self.text, self.svgs = [], [], [], [], 0
        self.table = self.row = self.cell = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        self.loads += [(tag, name, value) for name, value in attrs if name in ("src", "href", "srcset", "data")]
        if tag == "br" and self.cell is not None:
            self.cell.append(" ")
        elif tag == "svg":
            self.svgs += 1
        elif tag == "table":
            self.table = Table(attributes.get("class", ""))
            self.tables.append(self.table)
        elif tag == "tr" and self.table:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.table.header:
                self.table.rows.append(self.row)
            else:  # a table's first row is its header
                self.table.header = self.row
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)

    def tables_of(self, classes):
        return [table for table in self.tables if classes in table.classes.split()]


def read_page(html):
    reader = PageReader()
    reader.feed(html)
    reader.close()
    return reader
