"""The one verdict: every comparison of an expected copy with a found copy."""

from syncer.verdict import NOTHING_TO_DOWNLOAD, Copy, judge

A, B = "a" * 64, "b" * 64


def test_equal_digests_are_ok_and_a_different_one_says_which_algorithm():
    assert judge(Copy(3, {"sha256": A}), Copy(3, {"sha256": A})) == ("ok", None)
    assert judge(Copy(3, {"sha256": A}), Copy(3, {"sha256": B})) == ("changed", "content differs (sha256)")


def test_every_digest_both_sides_hold_must_agree():
    expected = Copy(digests={"sha256": A, "md5": "1" * 32})
    assert judge(expected, Copy(digests={"sha256": A, "md5": "2" * 32})) == ("changed", "content differs (md5)")
    assert judge(expected, Copy(digests={"md5": "1" * 32, "sha256": None})).ok


def test_a_size_that_differs_is_a_change_named_from_both_sides():
    verdict = judge(Copy(5, {"sha256": A}), Copy(13, {"sha256": A}))
    assert verdict == ("changed", "size 13 here, 5 at the authority")
    assert judge(Copy(5), Copy(13), there="in the manifest").reason == "size 13 here, 5 in the manifest"


def test_no_digest_in_common_is_unverifiable_never_ok():
    assert judge(Copy(3), Copy(3, {"sha256": A})) == ("unverifiable", "no checksum at the authority")
    assert judge(Copy(3, {"etag": "e-2"}), Copy(3, {"sha256": A})) == (
        "unverifiable", "no checksum in common (etag at the authority)")
    assert judge(Copy(3, note="Bunny gives no Checksum"), Copy(3, {"sha256": A})) == (
        "unverifiable", "Bunny gives no Checksum")


def test_a_note_on_the_found_side_makes_it_unverifiable_before_anything_else():
    assert judge(Copy(5, {"sha256": A}), Copy(9, note="local: cannot be read")) == (
        "unverifiable", "local: cannot be read")


def test_a_note_on_the_expected_side_explains_a_difference():
    verdict = judge(Copy(digests={"sha256": A}, note="branch main 1234 here"), Copy(digests={"sha256": B}))
    assert verdict == ("changed", "branch main 1234 here")


def test_absent_sides():
    assert judge(None, Copy(3)) == ("extra_local", None)
    assert judge(Copy(3, note="why"), None) == ("missing_local", "why")
    nothing = NOTHING_TO_DOWNLOAD + "SmugMug offers no original"
    assert judge(Copy(None, note=nothing), None) == ("unverifiable", nothing)


def test_content_changed_under_the_same_size_and_mtime_is_corruption():
    known = Copy(3, {"sha256": A}, mtime_ns=10)
    assert judge(known, Copy(3, {"sha256": B}, mtime_ns=10)).status == "corrupt"
    assert judge(known, Copy(3, {"sha256": B}, mtime_ns=11)).status == "changed"  # an edit
    assert judge(known, Copy(3, {"sha256": A}, mtime_ns=10)).ok
