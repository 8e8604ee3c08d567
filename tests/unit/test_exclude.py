from syncer.index.exclude import compile_excludes


def test_name_patterns_match_at_any_depth():
    excluded = compile_excludes(["*.tmp"])
    assert excluded("a.tmp") and excluded("x/y/a.tmp")
    assert not excluded("a.tmpx") and not excluded("tmp/a.txt")


def test_anchored_patterns_and_double_star():
    excluded = compile_excludes([".cache/**", "photos/*/raw"])
    assert excluded(".cache") and excluded(".cache/a") and excluded(".cache/a/b")
    assert not excluded("x/.cache/a")
    assert excluded("photos/2019/raw") and not excluded("photos/2019/x/raw")


def test_any_depth_prefix_and_character_class():
    excluded = compile_excludes(["**/node_modules", "IMG_[0-9][!a].jpg"])
    assert excluded("node_modules") and excluded("a/b/node_modules")
    assert excluded("IMG_1b.jpg") and not excluded("IMG_1a.jpg")


def test_no_patterns_exclude_nothing():
    assert not compile_excludes([])("anything")
