"""NodeQuery voice: espeak-ng asks, pocketsphinx hears, the station answers from its store and speaks."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smart import recordings
from smart.contracts import facts as f
from smart.modules.node_query import grammar, questions, speech
from tests.modules.test_node_query_answers import (
    AT,
    PtStation,
    penetrant_envelope,
    shop_facts,
    start_pt_station,
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian) not installed")


def spoken(text: str, path: Path) -> Path:
    """``text`` as espeak-ng says it (US English), a 22.05 kHz WAV like a person at the mic, more or less."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def recogniser() -> speech.PocketSphinxRecogniser:
    return speech.PocketSphinxRecogniser.for_station(shop_facts())


@pytest.fixture
async def pt1(tmp_path: Path) -> AsyncIterator[PtStation]:
    station = await start_pt_station(tmp_path)
    station.activate(penetrant_envelope(station.keys), 1)
    station.refuse_ben()
    station.agent.record(
        kind="job.transition",
        subject="J-1001",
        data={"verb": "step", "from": "gated", "to": "in-process", "allowed": True},
        actor="ana",
    )
    try:
        yield station
    finally:
        await station.agent.stop()


#: Spoken question → the question it must be read as → a piece of the answer from pt-1's store.
SPOKEN = [
    ("hey smart what is the station status", "station-status", "Station pt-1 is enforcing 1 contract"),
    ("hey smart why was the last operation refused", "why-refused", "ben holds no current PT certification"),
    ("hey smart when is my certification due", "certification-due", "Your PT certification is due 2027"),
    ("hey smart when is the certification of ben due", "certification-due", "ben's PT certification is not"),
    ("hey smart when is the light meter calibration due", "calibration-due", "UV-METER-1 (light-meter)"),
    ("hey smart when is u v meter one calibration due", "calibration-due", "calibration is due 2026-08-10"),
    ("hey smart what is the current job", "current-job", "Job J-1001 is in process"),
    ("hey smart which contract revision is active", "contract-revision", "penetrant: revision "),
]


async def test_spoken_questions_are_heard_and_answered_from_the_station_store(
    pt1: PtStation, recogniser: speech.PocketSphinxRecogniser, tmp_path: Path
) -> None:
    right = []
    for index, (said, topic, answer_part) in enumerate(SPOKEN):
        wav = spoken(said, tmp_path / f"question-{index}.wav")
        reply = speech.voice_answer(wav, local=pt1.local, recogniser=recogniser, badge="ana", at=AT)
        heard_right = isinstance(reply.question, questions.Question) and reply.question.topic == topic
        if heard_right and answer_part in reply.answer.text:
            right.append(said)
        else:
            print(f"{said!r}: heard {reply.heard!r} → {reply.question} → {reply.answer.text!r}")
    assert right == [said for said, _, _ in SPOKEN]


async def test_speech_without_the_wake_word_is_not_taken_for_a_question(
    pt1: PtStation, recogniser: speech.PocketSphinxRecogniser, tmp_path: Path
) -> None:
    wav = spoken("what is the station status", tmp_path / "no-wake.wav")
    reply = speech.voice_answer(wav, local=pt1.local, recogniser=recogniser, at=AT)
    assert reply.heard == "what is the station status"
    assert isinstance(reply.question, questions.NotUnderstood)
    assert reply.answer.spoken == 'I did not understand that: a question starts with "Hey SMART".'


@pytest.mark.parametrize(
    "said", ["hey smart turn on the lights", "can you pass me the developer", "good morning everyone"]
)
async def test_other_speech_is_not_forced_onto_a_question(
    pt1: PtStation, recogniser: speech.PocketSphinxRecogniser, tmp_path: Path, said: str
) -> None:
    reply = speech.voice_answer(spoken(said, tmp_path / "other.wav"), local=pt1.local, recogniser=recogniser)
    assert isinstance(reply.question, questions.NotUnderstood)
    assert not reply.answer.understood and reply.answer.spoken.startswith("I did not understand")


async def test_silence_is_heard_as_nothing_asked(
    pt1: PtStation, recogniser: speech.PocketSphinxRecogniser
) -> None:
    reply = speech.voice_answer(bytes(2 * speech.RATE), local=pt1.local, recogniser=recogniser, at=AT)
    assert not reply.answer.understood


async def test_a_typed_question_needs_no_wake_word_and_the_answer_is_written_as_a_wav(
    pt1: PtStation, tmp_path: Path
) -> None:
    speaker = speech.EspeakSpeaker(wav_dir=tmp_path / "answers")
    reply = speech.voice_answer(
        "When is my certification due?", local=pt1.local, speaker=speaker, badge="ana", at=AT
    )
    assert reply.answer.spoken.startswith("Your PT certification is due 20 May 2027")
    assert reply.answer.lines[0].startswith("Your PT certification is due 2027-05-20")
    assert reply.spoken_wav is not None and reply.spoken_wav.parent == tmp_path / "answers"
    with wave.open(str(reply.spoken_wav), "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
    assert 3.0 < seconds < 30.0, seconds


async def test_a_microphone_stream_is_cut_into_questions_and_each_is_answered(
    pt1: PtStation, recogniser: speech.PocketSphinxRecogniser, tmp_path: Path
) -> None:
    pause = bytes(2 * speech.RATE)  # one second of silence
    stream = pause + b"".join(
        speech.pcm16k(spoken(said, tmp_path / f"{n}.wav")) + pause
        for n, said in enumerate(
            ["hey smart what is the current job", "hey smart when is my certification due"]
        )
    )
    chunks = (stream[i : i + 1000] for i in range(0, len(stream), 1000))
    replies = list(speech.listen(chunks, local=lambda: pt1.local, recogniser=recogniser, badge=lambda: "ana"))
    assert [r.heard for r in replies] == [
        "hey smart what is the current job",
        "hey smart when is my certification due",
    ]
    assert replies[1].answer.spoken.startswith("Your PT certification is")  # judged now, not at AT


def test_wavs_of_any_rate_become_16_khz_mono_and_raw_pcm_passes_through(tmp_path: Path) -> None:
    wav = spoken("current job", tmp_path / "q.wav")
    with wave.open(str(wav), "rb") as source:
        rate, frames = source.getframerate(), source.getnframes()
    pcm = speech.pcm16k(wav)
    assert rate != speech.RATE and abs(len(pcm) // 2 - round(frames * speech.RATE / rate)) <= 1
    assert speech.pcm16k(wav.read_bytes()) == pcm
    assert speech.pcm16k(pcm) == pcm
    assert speech.pcm16k(recordings.wav_bytes(pcm)) == pcm
    with pytest.raises(speech.SpeechError, match="not a readable WAV"):
        speech.pcm16k(b"RIFF not really")


def test_the_grammar_names_the_stations_equipment_as_it_is_said(
    recogniser: speech.PocketSphinxRecogniser,
) -> None:
    assert "<equipment> = light meter | uv meter one | tam panel | tam one four six zero four zero;" in (
        recogniser.grammar
    )
    assert "<person> = ana | ben;" in recogniser.grammar
    assert grammar.say("DRY-OVEN-1", known=lambda w: w in {"dry", "oven"}) == "dry oven one"
    assert grammar.say("XQ-7", known=lambda w: w in {"x", "q"}) == "x q seven"
    assert grammar.say("ZZ-1", known=lambda w: False) is None


def test_vosk_is_used_only_where_installed_with_a_model(tmp_path: Path) -> None:
    chosen = speech.recogniser(f.Facts(), vosk_model=tmp_path / "no-model")
    assert isinstance(chosen, speech.PocketSphinxRecogniser)
    if importlib.util.find_spec("vosk") is None:
        with pytest.raises(speech.SpeechError, match="vosk is not installed"):
            speech.VoskRecogniser(tmp_path)
