"""A spoken question's recording read as what the recognisers take: 16 kHz mono 16-bit PCM.

Two voice paths hear recordings: the station's (:mod:`smart.modules.node_query.speech`, a WAV
file or the microphone) and the hub's (:mod:`smart.hub.hubquery.speech`, uploads). A hub may
not import a station module and a module imports no hub, so reading a WAV lives here, below
both; each path turns a :class:`RecordingError` into its own speech error.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

#: What the recognisers take: 16 kHz, mono, signed 16-bit little-endian PCM.
RATE = 16000


class RecordingError(ValueError):
    """A recording that cannot be read; the message names it and says what is wrong."""


def pcm16k(audio: bytes | Path, *, max_seconds: int | None = None) -> bytes:
    """16 kHz mono int16 PCM from a WAV file (path or bytes; any rate, mono or stereo, 8 or 16-bit).

    With ``max_seconds``, a longer recording is refused before its frames are read (this bounds
    the decoder's work on an upload).
    """
    where = str(audio) if isinstance(audio, Path) else "audio"
    try:
        with wave.open(str(audio) if isinstance(audio, Path) else io.BytesIO(audio), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if max_seconds is not None and wav.getnframes() > max_seconds * rate:
                raise RecordingError(f"{where}: longer than {max_seconds} s; ask one question a recording")
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as err:
        raise RecordingError(f"{where}: not a readable WAV file (RIFF, PCM): {err}") from err
    if width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    elif width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    else:
        raise RecordingError(f"{where}: WAV of {8 * width}-bit samples; expected 8 or 16")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != RATE and len(samples):
        count = round(len(samples) * RATE / rate)
        samples = np.interp(np.arange(count) * (rate / RATE), np.arange(len(samples)), samples)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def wav_bytes(pcm: bytes, rate: int = RATE) -> bytes:
    """``pcm`` (mono int16) as WAV file bytes."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()
