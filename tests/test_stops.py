from candor.engine.stops import StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    out = "".join(matcher.feed(p) for p in pieces)
    return out + matcher.flush()


def test_stop_split_across_pieces_is_not_emitted():
    m = StopMatcher(stop_sequences=("STOP",))
    assert feed_all(m, ["hello S", "TO", "P and more"]) == "hello "
    assert m.hit and m.hit.sequence == "STOP" and not m.hit.is_end_of_turn


def test_partial_prefix_is_released_when_it_is_not_a_stop():
    m = StopMatcher(stop_sequences=("STOP",))
    assert m.feed("ST") == ""
    assert m.feed("AR") == "STAR"
    assert m.hit is None


def test_text_held_back_is_flushed_at_the_end():
    m = StopMatcher(end_sequences=("\n\nHuman:",))
    assert m.feed("answer\n\n") == "answer"
    assert m.flush() == "\n\n"


def test_end_of_turn_sequence_is_marked():
    m = StopMatcher(stop_sequences=("###",), end_sequences=("\n\nHuman:",))
    assert feed_all(m, ["ok\n\nHu", "man: next"]) == "ok"
    assert m.hit.is_end_of_turn


def test_earliest_stop_wins_and_callers_stop_beats_format_stop():
    m = StopMatcher(stop_sequences=("b", "\n\nHuman:"), end_sequences=("\n\nHuman:",))
    assert feed_all(m, ["a\n\nHuman: b"]) == "a"
    assert m.hit.sequence == "\n\nHuman:" and not m.hit.is_end_of_turn


def test_no_stops_passes_text_through():
    m = StopMatcher()
    assert m.feed("anything") == "anything"
