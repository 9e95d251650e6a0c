"""Report photos (ảnh phản ánh): refuse what is not a photo, keep what the photo says as
data, and store only clean renditions.

``process_photo`` takes the uploaded bytes and returns a display rendition (long edge at
most 2048) and a thumbnail (at most 400), both baseline JPEGs in sRGB with no metadata
at all (no EXIF, GPS, XMP, ICC profile, comments), turned upright by the EXIF
orientation. The geotag and capture time are read from the EXIF and returned as data.
It is pure and synchronous (bytes in, bytes out); ``process_photo_async`` runs it on a
small pool of threads of its own, off the event loop.

The type is decided by content, never by a name: Pillow opens the bytes with only the
JPEG, PNG, WebP and HEIF plugins allowed (each checks its magic bytes), and the magic
bytes alone tell a damaged photo (``photo_unreadable``) from another kind of file
(``photo_unsupported_type``). Limits are checked in order of cost: the byte count before
anything is parsed, the pixel count from the header before any pixel is decoded.

Cost, measured by ``python -m bench.photo_pipeline`` on a shared 2-core VM (numbers move
by +-20% between runs): a 12 MP JPEG takes ~125-150 ms of CPU, because libjpeg decodes it
at half scale (DCT scaling, see ``PhotoLimits.jpeg_draft_min_fraction``) straight to a
2000x1500 display; ~185 ms with a Display P3 profile, as iPhones write (LittleCMS
converts to sRGB: ~60-90 ms). Without the scaled decode it would be ~420 ms. A 12 MP
HEIC takes ~1 s (libde265), PNG ~0.5 s, WebP ~0.75 s.

Peak memory (growth of peak RSS) per photo: ~18 MB for a 12 MP JPEG, and about the same
for any larger JPEG (decoded at 1/4 or 1/8); ~5.5 bytes per pixel for PNG and HEIC and
for JPEGs that cannot be scaled down while decoding (66-70 MB at 12 MP, ~300 MB at the
50 MP limit); ~14 bytes per pixel for WebP, whose decoder keeps two canvases and a copy
(167 MB at 12 MP, ~730 MB at 50 MP). The pool runs one photo per CPU, so the bound for
the process is that times the CPU count, plus the request bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import os
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pillow_heif
from PIL import Image, ImageCms

from app.core.errors import PayloadTooLarge, Unprocessable

pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

SourceFormat = Literal["jpeg", "png", "webp", "heif"]

# Pillow's format name -> ours. An MPO is a JPEG with extra frames (phones write them).
_FORMATS: dict[str, SourceFormat] = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "HEIF": "heif",
}
_OPENERS = ["JPEG", "PNG", "WEBP", "HEIF"]
# the HEIF brands pillow-heif opens (HEVC-coded HEIF, as iPhones write it); not AVIF
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS_GENERIC = {b"mif1", b"msf1"}

try:
    LOCAL_TZ: tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tz database on the machine; Vietnam has been +07 since 1975
    LOCAL_TZ = timezone(timedelta(hours=7), "ICT")

# EXIF tags (TIFF/EXIF 2.32 numbers)
_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_OFFSET_TIME_ORIGINAL = 0x9011
_OFFSET_TIME_DIGITIZED = 0x9012
_SUBSEC_ORIGINAL = 0x9291
_SUBSEC_DIGITIZED = 0x9292
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_STATUS = 1, 2, 3, 4, 9

# EXIF orientation -> the transpose that turns the stored pixels upright (as
# ImageOps.exif_transpose does; applied here to the small rendition, not the full image)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class PhotoLimits:
    """What one uploaded photo may cost, and what is made of it."""

    max_bytes: int = 15_000_000
    max_pixels: int = 50_000_000
    display_long_edge: int = 2048
    thumb_long_edge: int = 400
    display_quality: int = 82
    thumb_quality: int = 75
    # A JPEG much larger than the display size is decoded by libjpeg at 1/2, 1/4 or 1/8
    # scale when that still leaves a long edge of at least this fraction of the display
    # size (a 4032x3024 photo then yields a 2016x1512 display at a quarter of the cost).
    # 1.0 means: decode so that the display is exactly display_long_edge.
    jpeg_draft_min_fraction: float = 0.9


@dataclass(frozen=True, slots=True)
class ProcessedPhoto:
    """The stored renditions (JPEG, no metadata) and what was read from the original."""

    display: bytes
    display_width: int
    display_height: int
    thumbnail: bytes
    thumb_width: int
    thumb_height: int
    source_format: SourceFormat
    taken_at: datetime | None  # aware, UTC
    latitude: float | None
    longitude: float | None
    sha256: bytes  # digest of the uploaded bytes (32 bytes)


# ---------------------------------------------------------------- the pipeline


def process_photo(data: bytes, limits: PhotoLimits | None = None) -> ProcessedPhoto:
    """Check, read and re-encode one uploaded photo. Raises ``PayloadTooLarge``
    (``photo_too_large``) or ``Unprocessable`` (``photo_unsupported_type``,
    ``photo_unreadable``, ``photo_too_many_pixels``)."""
    limits = limits or PhotoLimits()
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            "photo_too_large", params={"max_mb": _round_number(limits.max_bytes / 1_000_000)}
        )
    if not data:
        raise Unprocessable("photo_unreadable")
    digest = hashlib.sha256(data).digest()

    with _open(data, limits) as im:
        source_format = _FORMATS[im.format or ""]
        _decode(im, limits)
        orientation, taken_at, latitude, longitude = _read_exif(im)
        display = _display(im, limits)
        transpose = _TRANSPOSE.get(orientation)
        if transpose is not None:
            display = display.transpose(transpose)
        thumb = display.copy()
        thumb.thumbnail(
            (limits.thumb_long_edge, limits.thumb_long_edge), Image.Resampling.LANCZOS, 2.0
        )
        return ProcessedPhoto(
            display=_encode_jpeg(display, limits.display_quality),
            display_width=display.width,
            display_height=display.height,
            thumbnail=_encode_jpeg(thumb, limits.thumb_quality),
            thumb_width=thumb.width,
            thumb_height=thumb.height,
            source_format=source_format,
            taken_at=taken_at,
            latitude=latitude,
            longitude=longitude,
            sha256=digest,
        )


_pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="photo")


async def process_photo_async(data: bytes, limits: PhotoLimits | None = None) -> ProcessedPhoto:
    """``process_photo`` off the event loop. Pillow and libheif release the GIL while
    decoding, resizing and encoding, so photos are processed in parallel; the pool has one
    thread per CPU, which also bounds the memory of photos decoded at once."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, process_photo, data, limits)


# ---------------------------------------------------------------- steps


def _too_many_pixels(limits: PhotoLimits) -> Unprocessable:
    return Unprocessable(
        "photo_too_many_pixels",
        params={"max_megapixels": _round_number(limits.max_pixels / 1_000_000)},
    )


def _open(data: bytes, limits: PhotoLimits) -> Image.Image:
    """Identify the content and read the header only: no pixel is decoded here."""
    webp_size = _webp_canvas_size(data)
    if webp_size is not None and webp_size[0] * webp_size[1] > limits.max_pixels:
        # libwebp allocates its canvases when Pillow opens the file: check before that
        raise _too_many_pixels(limits)
    try:
        im = Image.open(io.BytesIO(data), formats=_OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard (it warns above ~89 Mpx, refuses above ~179 Mpx; the warning
        # is an exception when warnings are errors); ours below is stricter
        raise _too_many_pixels(limits) from None
    except Exception as exc:  # any failure to parse untrusted bytes
        code = "photo_unreadable" if _sniff(data) else "photo_unsupported_type"
        raise Unprocessable(code) from exc
    if im.format not in _FORMATS:  # cannot happen with formats=_OPENERS; cheap to be sure
        im.close()
        raise Unprocessable("photo_unsupported_type")
    width, height = im.size
    if width < 1 or height < 1:
        im.close()
        raise Unprocessable("photo_unreadable")
    if width * height > limits.max_pixels:
        im.close()
        raise _too_many_pixels(limits)
    return im


def _sniff(data: bytes) -> SourceFormat | None:
    """The format the magic bytes claim, to tell a damaged photo from another file type."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":
        major = data[8:12]
        if major in _HEIF_BRANDS:
            return "heif"
        if major in _HEIF_BRANDS_GENERIC:
            box_size = struct.unpack(">I", data[:4])[0]
            compatible = data[16 : min(box_size, 256)]
            brands = {compatible[i : i + 4] for i in range(0, len(compatible) - 3, 4)}
            if brands & _HEIF_BRANDS:
                return "heif"
    return None


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP's first chunk (VP8X, VP8L or VP8), or None."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return width, height
    return None


def _decode(im: Image.Image, limits: PhotoLimits) -> None:
    """Decode the pixels; a JPEG much larger than the display at reduced scale."""
    if im.format in ("JPEG", "MPO") and max(im.size) > limits.display_long_edge:
        floor = max(1, math.ceil(limits.jpeg_draft_min_fraction * limits.display_long_edge))
        im.draft(None, _fit(im.size, floor))  # libjpeg scales by 1/2, 1/4, 1/8 as it decodes
    try:
        im.load()
    except MemoryError:
        raise
    except Image.DecompressionBombError:
        raise _too_many_pixels(limits) from None
    except Exception as exc:  # truncated or corrupt data, decoder errors
        raise Unprocessable("photo_unreadable") from exc


def _display(im: Image.Image, limits: PhotoLimits) -> Image.Image:
    """The decoded image as sRGB RGB within the display size, with no metadata."""
    icc = im.info.get("icc_profile")
    out = _resizable(im)
    target = _fit(out.size, limits.display_long_edge)
    if target != out.size:
        # Bicubic (antialiased: Pillow widens the kernel by the scale), after a reduce() by
        # an integer factor when the ratio is 4 or more. Lanczos is a shade sharper at 1.8x
        # the cost: 290 ms instead of 165 for 12 MP -> 2048 (the thumbnail keeps Lanczos).
        out = out.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    out = _to_srgb(_flatten(out), icc)
    out.info = {}
    return out


def _fit(size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    width, height = size
    longest = max(width, height)
    if longest <= long_edge:
        return size
    scale = long_edge / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resizable(im: Image.Image) -> Image.Image:
    """A mode that resizes well, without growing the image more than needed: bilevel and
    16-bit grey become 8-bit grey, palettes RGB(A), CMYK and the rest RGB."""
    if im.mode in ("RGB", "RGBA", "L", "LA"):
        return im
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # scale to 8 bits (a plain convert would clip everything above 255 to white)
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if (im.mode == "P" and "transparency" in im.info) or im.mode in ("PA", "La", "RGBa"):
        return im.convert("RGBA")
    return im.convert("RGB")


def _flatten(im: Image.Image) -> Image.Image:
    """RGB; transparency is flattened on white."""
    if im.mode in ("RGBA", "LA"):
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im.convert("RGBA") if im.mode == "LA" else im, mask=im.getchannel("A"))
        return background
    return im if im.mode == "RGB" else im.convert("RGB")


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert from the embedded colour profile (an iPhone's Display P3, say) to sRGB, so
    the colours stay right once the profile is stripped. A broken profile is ignored."""
    if not icc:
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space.strip() != "RGB":
            return im
        if _is_srgb(source):
            return im
        srgb = ImageCms.createProfile("sRGB")  # per call: lcms handles are not shared
        transform = ImageCms.buildTransform(source, srgb, "RGB", "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im
    # in place: a second display-sized image would cost its page faults (~40 ms of sys)
    ImageCms.applyTransform(im, transform, inPlace=True)
    return im


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    description = (profile.profile.profile_description or "").lower()
    return "srgb" in description


def _encode_jpeg(im: Image.Image, quality: int) -> bytes:
    im.info = {}  # Pillow carries a comment over from info; nothing may leave with the photo
    buffer = io.BytesIO()
    im.save(
        buffer,
        "JPEG",
        quality=quality,
        optimize=True,  # optimal Huffman tables: ~3% smaller for ~10 ms
        progressive=False,  # progressive costs ~5x the encoding time for ~4% fewer bytes
        subsampling="4:2:0",
        exif=b"",
    )
    return buffer.getvalue()


# ---------------------------------------------------------------- EXIF


def _read_exif(im: Image.Image) -> tuple[int, datetime | None, float | None, float | None]:
    """Orientation, capture time and geotag. A malformed EXIF block is no reason to refuse
    a photo: whatever cannot be read is simply absent."""
    try:
        exif = im.getexif()
    except Exception:
        return 1, None, None, None
    try:
        orientation = int(exif.get(_ORIENTATION, 1))
    except (TypeError, ValueError):
        orientation = 1
    if orientation not in _TRANSPOSE:
        orientation = 1
    try:
        taken_at = _taken_at(exif.get_ifd(_EXIF_IFD))
    except Exception:
        taken_at = None
    try:
        latitude, longitude = _geotag(exif.get_ifd(_GPS_IFD))
    except Exception:
        latitude = longitude = None
    return orientation, taken_at, latitude, longitude


_EXIF_DATETIME = re.compile(r"^\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ")


def _taken_at(exif_ifd: dict[int, object]) -> datetime | None:
    """DateTimeOriginal with OffsetTimeOriginal (or the Digitized pair), in UTC. Without
    an offset the camera's clock is taken to be Vietnam's."""
    for stamp_tag, offset_tag, subsec_tag in (
        (_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _SUBSEC_ORIGINAL),
        (_DATETIME_DIGITIZED, _OFFSET_TIME_DIGITIZED, _SUBSEC_DIGITIZED),
    ):
        stamp = _text(exif_ifd.get(stamp_tag))
        match = _EXIF_DATETIME.match(stamp or "")
        if not match:
            continue
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            naive = datetime(year, month, day, hour, minute, second)
        except ValueError:  # "0000:00:00 00:00:00" and other impossible dates
            continue
        subsec = _text(exif_ifd.get(subsec_tag)) or ""
        if subsec.isdigit():
            naive = naive.replace(microsecond=int(subsec[:6].ljust(6, "0")))
        zone: tzinfo = LOCAL_TZ
        offset = _EXIF_OFFSET.match(_text(exif_ifd.get(offset_tag)) or "")
        if offset:
            sign = -1 if offset[1] == "-" else 1
            delta = timedelta(hours=int(offset[2]), minutes=int(offset[3]))
            if delta <= timedelta(hours=14):
                zone = timezone(sign * delta)
        if naive.year < 1900:
            continue
        return naive.replace(tzinfo=zone).astimezone(UTC)
    return None


def _geotag(gps: dict[int, object]) -> tuple[float | None, float | None]:
    """Latitude and longitude in degrees (WGS 84), or (None, None) when absent, void or
    absurd (out of range, NaN, a missing hemisphere, 0/0 'null island')."""
    if not gps or _text(gps.get(_GPS_STATUS)) == "V":  # V: measurement void
        return None, None
    latitude = _coordinate(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), "N", "S", 90.0)
    longitude = _coordinate(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), "E", "W", 180.0)
    if latitude is None or longitude is None:
        return None, None
    if abs(latitude) < 1e-6 and abs(longitude) < 1e-6:
        return None, None
    return latitude, longitude


def _coordinate(
    value: object, ref: object, positive: str, negative: str, limit: float
) -> float | None:
    hemisphere = (_text(ref) or "").upper()[:1]
    if hemisphere not in (positive, negative):
        return None
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(part) for part in parts]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if any(not math.isfinite(n) or n < 0 for n in numbers):
        return None
    if any(n >= 60.0001 for n in numbers[1:]):
        return None
    degrees = sum(n / 60**i for i, n in enumerate(numbers))
    if degrees > limit:
        return None
    return round(-degrees if hemisphere == negative else degrees, 7)


def _round_number(value: float) -> int | float:
    return int(value) if value == int(value) else round(value, 1)
