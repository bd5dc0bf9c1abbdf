"""Hearing a hub question in a recording, offline: pocketsphinx constrained by the hub grammar.

The station's voice path (``smart.modules.node_query.speech``) is the model:
the English model shipped in the pocketsphinx wheel, no language model, the
question grammar as the only search, no filler words between the grammar's
words. The hub hears uploads (the ``/ask`` page, ``POST
/api/v1/hubquery/audio``, ``smart hub query --audio``), not a live
microphone. A hub may not import a station module, so the few lines that
read a WAV are kept here too.
"""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smart.hub.hubquery import grammar

#: What the recogniser takes: 16 kHz, mono, signed 16-bit little-endian PCM.
RATE = 16000
#: The longest recording heard (a question takes a few seconds; this bounds the decoder's work).
MAX_SECONDS = 30


class SpeechError(ValueError):
    """A recording that cannot be heard; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Heard:
    """The grammar's words heard (empty when none), and whether the speech was not a question."""

    text: str
    other: bool = False


def pcm16k(audio: bytes | Path) -> bytes:
    """16 kHz mono int16 PCM from a WAV file (path or bytes; any rate, mono or stereo, 8 or 16-bit)."""
    where = str(audio) if isinstance(audio, Path) else "audio"
    try:
        with wave.open(str(audio) if isinstance(audio, Path) else io.BytesIO(audio), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if wav.getnframes() > MAX_SECONDS * rate:
                raise SpeechError(f"{where}: longer than {MAX_SECONDS} s; ask one question a recording")
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as err:
        raise SpeechError(f"{where}: not a readable WAV file (RIFF, PCM): {err}") from err
    if width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    elif width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    else:
        raise SpeechError(f"{where}: WAV of {8 * width}-bit samples; expected 8 or 16")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != RATE and len(samples):
        count = round(len(samples) * RATE / rate)
        samples = np.interp(np.arange(count) * (rate / RATE), np.arange(len(samples)), samples)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


class HubRecogniser:
    """pocketsphinx with the hub grammar; one decoder, one recording at a time (it is not thread-safe).

    The grammar names the hub's own POs; it is rebuilt when the POs given change.
    """

    name = "pocketsphinx"

    def __init__(self) -> None:
        self._decoder: Any = None
        self._lock = threading.Lock()
        self._pos: tuple[str, ...] | None = None
        self.grammar = grammar.jsgf()

    def _ready(self, po_numbers: tuple[str, ...]) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(lm=None, loglevel="FATAL", fsgusefiller=False)
        if po_numbers != self._pos:
            self.grammar = grammar.jsgf(po_numbers)
            self._decoder.add_jsgf_string(grammar.NAME, self.grammar)
            self._decoder.activate_search(grammar.NAME)
            self._pos = po_numbers
        return self._decoder

    def recognise(self, pcm: bytes, *, po_numbers: Sequence[str] = ()) -> Heard:
        """The question in ``pcm`` (16 kHz mono int16), the grammar naming ``po_numbers``."""
        with self._lock:
            decoder = self._ready(tuple(sorted(set(po_numbers))))
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
        text = "" if hypothesis is None else str(hypothesis.hypstr)
        if grammar.is_other(text):
            return Heard("", other=True)
        return Heard(text)
