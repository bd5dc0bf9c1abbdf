"""NodeQuery questions: what a person types or says, read as one of the station's questions."""

from __future__ import annotations

import pytest

from smart.modules.node_query import grammar, questions


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Hey SMART, what is the station status?", "station-status"),
        ("status", "station-status"),
        ("Why was the last operation refused?", "why-refused"),
        ("why was I blocked", "why-refused"),
        ("why not", "why-refused"),
        ("what job is this", "current-job"),
        ("Current job?", "current-job"),
        ("which contract revision is active", "contract-revision"),
        ("revision", "contract-revision"),
    ],
)
def test_typed_questions_are_read_by_topic(text: str, topic: str) -> None:
    question = questions.parse(text)
    assert isinstance(question, questions.Question) and question.topic == topic


@pytest.mark.parametrize(
    ("text", "person"),
    [
        ("when is my certification due", None),
        ("When does my cert expire?", None),
        ("when is ana's certification due", "ana"),
        ("when is the certification of ana due", "ana"),
        ("when is ana certification due", "ana"),
    ],
)
def test_certification_questions_name_the_asker_or_a_person(text: str, person: str | None) -> None:
    assert questions.parse(text) == questions.Question("certification-due", text, person=person)


@pytest.mark.parametrize(
    ("text", "equipment"),
    [
        ("When is UV-METER-1 calibration due?", "uv-meter-1"),
        ("when is the light meter calibration due", "light meter"),
        ("when is the light meter due for calibration", "light meter"),
        ("calibration of the light meter", "light meter"),
        ("hey smart when is u v meter one calibration due", "u v meter one"),
    ],
)
def test_calibration_questions_name_the_equipment(text: str, equipment: str) -> None:
    assert questions.parse(text) == questions.Question("calibration-due", text, equipment=equipment)


def test_typed_and_spoken_equipment_names_meet() -> None:
    assert questions.spoken_key("UV-METER-1") == questions.spoken_key("u v meter one") == "uvmeter1"
    assert questions.spoken_key("TAM-146040") == questions.spoken_key("tam one four six zero four zero")
    assert questions.spoken_key("uv-a-lamp") == questions.spoken_key("u v a lamp")
    assert questions.spoken_key("the light meter") == questions.spoken_key("light-meter")


def test_voice_needs_the_wake_word_and_text_does_not() -> None:
    assert isinstance(questions.parse("what is the station status"), questions.Question)
    refused = questions.parse("what is the station status", wake_word=True)
    assert isinstance(refused, questions.NotUnderstood)
    assert refused.message.startswith('I did not understand that: a question starts with "Hey SMART".')
    heard = questions.parse("hey smart what is the station status", wake_word=True)
    assert isinstance(heard, questions.Question) and heard.topic == "station-status"


def test_what_is_not_a_question_says_so_and_what_may_be_asked() -> None:
    for text in ("open the pod bay doors", "hey smart", "when is the calibration due"):
        outcome = questions.parse(text)
        assert isinstance(outcome, questions.NotUnderstood), text
        assert "You can ask: what is the station status" in outcome.message


def test_every_sentence_of_the_grammar_is_a_question_it_reads_back() -> None:
    said = grammar.sentences(equipment=["light meter", "uv meter one"], people=["ana"])
    assert len(said) == len(set(said)) > 15
    for sentence in said:
        assert isinstance(questions.parse(f"hey smart {sentence}", wake_word=True), questions.Question), (
            sentence
        )
    jsgf = grammar.jsgf(equipment=["light meter"], people=["ana"])
    assert "public <utterance> = [hey smart] <question> | <other>;" in jsgf
    assert (
        "<other> = (about | after | again | all | also | always | am | an | and | any | around | as)+;"
        in jsgf
    )
    assert grammar.is_other("about as and") and not grammar.is_other("hey smart current job")
    assert "<calibration>" in grammar.jsgf(equipment=["light meter"])
    assert "<calibration>" not in grammar.jsgf()
