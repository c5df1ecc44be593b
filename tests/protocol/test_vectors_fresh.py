from conformance_tests import make_vectors


def test_committed_vectors_match_the_generator() -> None:
    assert make_vectors.main(["--check"]) == 0
