"""The window rule: every token read, neighbours overlap, no window longer than the heads were trained on, and no
more windows or tokens than that needs."""
from router_extproc.signals.windows import MIN_OVERLAP, WINDOW_TOKENS, windows


def test_a_prompt_that_fits_is_one_window_of_its_own_length():
    assert windows(0) == ([0], 0)
    assert windows(50) == ([0], 50)
    assert windows(WINDOW_TOKENS) == ([0], WINDOW_TOKENS)


def test_windows_cover_the_text_and_overlap():
    for n in range(WINDOW_TOKENS + 1, 5000):
        starts, width = windows(n)
        assert 0 < width <= WINDOW_TOKENS, n
        assert starts[0] == 0 and starts[-1] + width == n, n
        assert all(a + width - b >= MIN_OVERLAP for a, b in zip(starts, starts[1:])), n
        # as few windows as a full-length cover needs
        assert len(starts) == -(-(n - MIN_OVERLAP) // (WINDOW_TOKENS - MIN_OVERLAP)), n


def test_windows_are_only_as_long_as_the_cover_needs():
    assert windows(510) == ([0, 99, 198, 296, 395], 115)   # five of 126 would read 630 tokens for 510
    starts, width = windows(127)
    assert len(starts) == 2 and width == 72                 # not two of 126 for one token too many
