"""Hearing a hub question in a recording, offline: pocketsphinx constrained by the hub grammar.

The station's voice path (``smart.modules.node_query.speech``) is the model:
the English model shipped in the pocketsphinx wheel, no language model, the
question grammar as the only search, no filler words between the grammar's
words. The hub hears uploads (the ``/ask`` page, ``POST
/api/v1/hubquery/audio``, ``smart hub query --audio``), not a live
microphone. A hub may not import a station module: both read a WAV with
:mod:`smart.recordings`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smart import recordings
from smart.hub.hubquery import grammar

#: What the recogniser takes: 16 kHz, mono, signed 16-bit little-endian PCM.
RATE = recordings.RATE
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
    try:
        return recordings.pcm16k(audio, max_seconds=MAX_SECONDS)
    except recordings.RecordingError as err:
        raise SpeechError(str(err)) from err


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
