"""Hearing a question and speaking its answer, offline, behind two small interfaces.

A :class:`Recogniser` turns 16 kHz mono 16-bit PCM into the words heard.
:class:`PocketSphinxRecogniser` uses the English model shipped in the
pocketsphinx wheel, constrained by the station's question grammar
(:mod:`.grammar`), so it only ever hears one of the station's questions (or
nothing). :class:`VoskRecogniser` is used instead where vosk is importable
and a model directory is configured (:func:`recogniser`), with the same
sentences as its grammar. A :class:`Speaker` says an answer:
:class:`EspeakSpeaker` runs espeak-ng, playing it where the station has a
sound device and writing a WAV file where it has none (or when asked to).

:func:`voice_answer` is the whole path: text (typed at the kiosk) or audio
(a WAV file or PCM bytes from the microphone) → question → answer from the
local store → spoken. For a live microphone, :func:`utterances` cuts a PCM
stream into utterances with pocketsphinx's voice-activity endpointer,
:func:`microphone` reads one with ALSA's ``arecord``, and :func:`listen`
answers each utterance in turn.
"""

from __future__ import annotations

import abc
import importlib.util
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from smart import recordings
from smart.contracts import facts as f
from smart.modules.node_query import answers, grammar, questions

#: What every recogniser takes: 16 kHz, mono, signed 16-bit little-endian PCM.
RATE = recordings.RATE


class SpeechError(RuntimeError):
    """Audio that cannot be read, or a speech engine that cannot run; the message says which."""


@dataclass(frozen=True, slots=True)
class Heard:
    """What a recogniser heard: a question's words (empty when none), the engine, and whether it heard
    speech that is not a question (``other``)."""

    text: str
    engine: str
    other: bool = False


class Recogniser(abc.ABC):
    """Speech to text for the station's questions."""

    name: str

    @abc.abstractmethod
    def recognise(self, pcm: bytes) -> Heard:
        """The words in ``pcm`` (16 kHz mono int16)."""


class Speaker(abc.ABC):
    """Text to speech for answers."""

    @abc.abstractmethod
    def speak(self, text: str) -> Path | None:
        """Say ``text``; returns the WAV written when it was written rather than played."""


# -- audio ----------------------------------------------------------------------------------


def pcm16k(audio: bytes | Path) -> bytes:
    """16 kHz mono int16 PCM from a WAV file's path or bytes (any rate, mono or stereo, 8/16-bit).

    Bytes that are not a WAV file (no ``RIFF`` header) are taken as 16 kHz mono int16 PCM already,
    as a microphone stream delivers it.
    """
    if isinstance(audio, bytes) and not audio.startswith(b"RIFF"):
        return audio
    try:
        return recordings.pcm16k(audio)
    except recordings.RecordingError as err:
        raise SpeechError(str(err)) from err


# -- recognisers ----------------------------------------------------------------------------


def station_vocabulary(facts: f.Facts, *, known: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """How the station's equipment (ids and kinds) and people are said, where the words are known."""
    equipment: list[str] = []
    for record in facts.equipment.values():
        for name in (record.kind, record.id):
            said = grammar.say(name, known=known)
            if said:
                equipment.append(said)
    people = [said for p in facts.people if (said := grammar.say(p, known=known))]
    return list(dict.fromkeys(equipment)), list(dict.fromkeys(people))


def _sphinx() -> Any:
    """A pocketsphinx decoder on the wheel's en-us model, with no language model (a grammar follows).

    Filler words (silence, breath, noise) are not inserted between the grammar's words: with them,
    synthetic and clipped speech often ended in a filler path that never reached the end of a
    sentence, and nothing was heard (88/88 questions right without them in our espeak-ng tests,
    60/88 with).
    """
    from pocketsphinx import Decoder

    return Decoder(lm=None, loglevel="FATAL", fsgusefiller=False)


def _knows(decoder: Any) -> Callable[[str], bool]:
    return lambda word: decoder.lookup_word(word) is not None


class PocketSphinxRecogniser(Recogniser):
    """pocketsphinx with the wheel's English model and the station's question grammar (JSGF)."""

    name = "pocketsphinx"

    def __init__(self, *, equipment: Sequence[str] = (), people: Sequence[str] = ()) -> None:
        self._decoder = _sphinx()
        self.grammar = grammar.jsgf(equipment=equipment, people=people)
        self._decoder.add_jsgf_string(grammar.NAME, self.grammar)
        self._decoder.activate_search(grammar.NAME)

    @classmethod
    def for_station(cls, facts: f.Facts) -> PocketSphinxRecogniser:
        """A recogniser whose grammar names the station's own equipment and people."""
        equipment, people = station_vocabulary(facts, known=_knows(_sphinx()))
        return cls(equipment=equipment, people=people)

    def recognise(self, pcm: bytes) -> Heard:
        decoder = self._decoder
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        text = "" if hypothesis is None else str(hypothesis.hypstr)
        if grammar.is_other(text):
            return Heard("", self.name, other=True)
        return Heard(text, self.name)


class VoskRecogniser(Recogniser):
    """vosk with an installed model directory, constrained to the question sentences."""

    name = "vosk"

    def __init__(
        self, model_path: Path, *, equipment: Sequence[str] = (), people: Sequence[str] = ()
    ) -> None:
        if importlib.util.find_spec("vosk") is None:
            raise SpeechError("vosk is not installed on this station")
        if not Path(model_path).is_dir():
            raise SpeechError(f"vosk model directory {model_path} does not exist")
        import vosk

        vosk.SetLogLevel(-1)
        self._model = vosk.Model(str(model_path))
        said = grammar.sentences(equipment=equipment, people=people)
        phrases = said + [f"{questions.WAKE_WORD} {s}" for s in said] + ["[unk]"]
        self._grammar = json.dumps(phrases)

    def recognise(self, pcm: bytes) -> Heard:
        import vosk

        recogniser = vosk.KaldiRecognizer(self._model, RATE, self._grammar)
        recogniser.AcceptWaveform(pcm)
        text = str(json.loads(recogniser.FinalResult()).get("text", ""))
        if "[unk]" in text:
            return Heard("", self.name, other=True)
        return Heard(text.strip(), self.name)


def recogniser(facts: f.Facts, *, vosk_model: Path | None = None) -> Recogniser:
    """vosk where it is installed and ``vosk_model`` exists; pocketsphinx with the grammar otherwise."""
    if vosk_model is not None and importlib.util.find_spec("vosk") is not None and Path(vosk_model).is_dir():
        equipment, people = station_vocabulary(facts, known=_knows(_sphinx()))
        return VoskRecogniser(vosk_model, equipment=equipment, people=people)
    return PocketSphinxRecogniser.for_station(facts)


# -- speaker --------------------------------------------------------------------------------


def has_sound_device() -> bool:
    """Whether the machine has an ALSA playback device (a Pi with a speaker does; CI does not)."""
    cards = Path("/proc/asound/cards")
    try:
        return cards.exists() and "no soundcards" not in cards.read_text() and bool(cards.read_text().strip())
    except OSError:
        return False


class EspeakSpeaker(Speaker):
    """espeak-ng: plays on the sound device, or writes ``answer-<n>.wav`` into ``wav_dir``.

    With ``wav_dir`` given, or with no sound device, every answer is written as a WAV (the kiosk
    page can play it in the browser); otherwise it is played.
    """

    def __init__(
        self, *, wav_dir: Path | None = None, voice: str = "en-us", words_per_minute: int = 150
    ) -> None:
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise SpeechError("espeak-ng is not installed (Debian package espeak-ng)")
        self.wav_dir = wav_dir
        self.voice = voice
        self.words_per_minute = words_per_minute
        self._count = 0

    def _command(self, text: str) -> list[str]:
        assert self.binary is not None
        return [self.binary, "-v", self.voice, "-s", str(self.words_per_minute), "--", text]

    def write_wav(self, text: str, path: Path) -> Path:
        """Synthesize ``text`` into the WAV file ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        command = self._command(text)
        command[1:1] = ["-w", str(path)]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            raise SpeechError(f"espeak-ng could not write {path}: {err}") from err
        return path

    def speak(self, text: str) -> Path | None:
        if self.wav_dir is None and has_sound_device():
            try:
                subprocess.run(self._command(text), check=True, capture_output=True, timeout=60)
                return None
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass  # no usable device after all: write the answer instead
        directory = self.wav_dir or Path(tempfile.gettempdir()) / "smart-node-query"
        self._count += 1
        return self.write_wav(text, directory / f"answer-{self._count}.wav")


# -- the whole path -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One voice or text exchange: what was heard, the question read from it, the answer, its WAV."""

    heard: str
    question: questions.Question | questions.NotUnderstood
    answer: answers.Answer
    spoken_wav: Path | None = None


def voice_answer(
    audio_or_text: str | bytes | Path,
    *,
    local: answers.Local,
    recogniser: Recogniser | None = None,
    speaker: Speaker | None = None,
    badge: str | None = None,
    at: datetime | None = None,
) -> Reply:
    """Answer a question typed (``str``: the wake word optional) or spoken (WAV path or bytes).

    Spoken questions must start with "Hey SMART". With a ``speaker`` the answer is said aloud
    (or written to a WAV, see :class:`EspeakSpeaker`).
    """
    question: questions.Question | questions.NotUnderstood
    if isinstance(audio_or_text, str):
        heard = audio_or_text
        question = questions.parse(heard, wake_word=False)
    else:
        if recogniser is None:
            recogniser = PocketSphinxRecogniser.for_station(local.facts)
        result = recogniser.recognise(pcm16k(audio_or_text))
        heard = result.text
        if result.other:
            question = questions.NotUnderstood("", "that: it is not one of the station's questions")
        elif not heard:
            question = questions.NotUnderstood("", "anything: no question was heard")
        else:
            question = questions.parse(heard, wake_word=True)
    reply = answers.answer(question, local=local, badge=badge, at=at)
    wav = speaker.speak(reply.spoken) if speaker is not None else None
    return Reply(heard, question, reply, wav)


# -- a live microphone ----------------------------------------------------------------------


def utterances(stream: Iterable[bytes]) -> Iterator[bytes]:
    """Cut a stream of 16 kHz mono int16 PCM (chunks of any size) into utterances, each as PCM.

    pocketsphinx's endpointer decides speech from non-speech over a 0.3 s window, so the short
    gaps between words stay inside one utterance and a pause ends it.
    """
    from pocketsphinx import Endpointer

    endpointer = Endpointer(sample_rate=RATE)
    size = int(endpointer.frame_bytes)
    pending = b""
    speech = bytearray()
    for chunk in stream:
        pending += chunk
        while len(pending) >= size:
            frame, pending = pending[:size], pending[size:]
            voiced = endpointer.process(frame)
            if voiced is not None:
                speech += voiced
                if not endpointer.in_speech:
                    yield bytes(speech)
                    speech.clear()
    if endpointer.in_speech:
        speech += endpointer.end_stream(pending) or b""
    if speech:
        yield bytes(speech)


def microphone(*, device: str | None = None, chunk_bytes: int = 4096) -> Iterator[bytes]:
    """16 kHz mono int16 PCM from the station's microphone, read with ALSA's ``arecord``."""
    binary = shutil.which("arecord")
    if binary is None:
        raise SpeechError("arecord is not installed (Debian package alsa-utils); no microphone input")
    command = [binary, "-q", "-t", "raw", "-f", "S16_LE", "-r", str(RATE), "-c", "1"]
    if device:
        command += ["-D", device]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        try:
            while chunk := process.stdout.read(chunk_bytes):
                yield chunk
        finally:
            process.terminate()
    if process.returncode not in (0, -15):
        raise SpeechError(f"arecord stopped with exit code {process.returncode}")


def listen(
    stream: Iterable[bytes],
    *,
    local: Callable[[], answers.Local],
    recogniser: Recogniser,
    speaker: Speaker | None = None,
    badge: Callable[[], str | None] = lambda: None,
) -> Iterator[Reply]:
    """Answer every utterance in ``stream``; ``local`` and ``badge`` are asked afresh for each one."""
    for utterance in utterances(stream):
        yield voice_answer(utterance, local=local(), recogniser=recogniser, speaker=speaker, badge=badge())
