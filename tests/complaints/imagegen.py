"""Test photos made with Pillow (and pillow-heif's HEVC encoder): real files in every
accepted format with real EXIF, and the files a photo upload must refuse.

Nothing here touches the network or the disk; every generator returns bytes.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from datetime import datetime
from functools import cache

import pillow_heif
from PIL import Image, ImageDraw, ImageFilter, TiffImagePlugin

pillow_heif.register_heif_opener()

CAMERA_MAKE = "ZeissTestCam"
CAMERA_MODEL = "Model-X9-Unique"
XMP_MARKER = "xmp-secret-marker"
COMMENT_MARKER = b"comment-secret-marker"
MARKER = (230, 20, 20)  # a red block in the top-left corner of the stored pixels
BODY = (40, 90, 200)  # the rest of a marker image

# tags
ORIENTATION, MAKE, MODEL, SOFTWARE = 0x0112, 0x010F, 0x0110, 0x0131
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, SUBSEC_ORIGINAL = 0x9003, 0x9011, 0x9291


def xmp_packet(text: str = XMP_MARKER) -> bytes:
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:source="{text}"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def _dms(degrees: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    degrees = abs(degrees)
    d = int(degrees)
    minutes = (degrees - d) * 60
    m = int(minutes)
    seconds = (minutes - m) * 60
    return (
        TiffImagePlugin.IFDRational(d, 1),
        TiffImagePlugin.IFDRational(m, 1),
        TiffImagePlugin.IFDRational(round(seconds * 10000), 10000),
    )


def make_exif(
    *,
    orientation: int | None = None,
    lat: float | None = None,
    lon: float | None = None,
    lat_ref: str | None = None,
    lon_ref: str | None = None,
    gps_raw: dict[int, object] | None = None,
    taken: datetime | str | None = None,
    offset: str | None = None,
    subsec: str | None = None,
    camera: bool = True,
) -> Image.Exif:
    """An EXIF block. lat/lon are signed degrees; the refs follow the sign unless given."""
    exif = Image.Exif()
    if camera:
        exif[MAKE] = CAMERA_MAKE
        exif[MODEL] = CAMERA_MODEL
        exif[SOFTWARE] = "imagegen 1.0"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if taken is not None or offset is not None or subsec is not None:
        ifd = exif.get_ifd(EXIF_IFD)
        if taken is not None:
            ifd[DATETIME_ORIGINAL] = (
                taken if isinstance(taken, str) else taken.strftime("%Y:%m:%d %H:%M:%S")
            )
        if offset is not None:
            ifd[OFFSET_TIME_ORIGINAL] = offset
        if subsec is not None:
            ifd[SUBSEC_ORIGINAL] = subsec
    if lat is not None or lon is not None or gps_raw is not None:
        gps = exif.get_ifd(GPS_IFD)
        gps[0] = b"\x02\x03\x00\x00"  # GPSVersionID
        if lat is not None:
            gps[1] = lat_ref if lat_ref is not None else ("N" if lat >= 0 else "S")
            gps[2] = _dms(lat)
        if lon is not None:
            gps[3] = lon_ref if lon_ref is not None else ("E" if lon >= 0 else "W")
            gps[4] = _dms(lon)
        gps.update(gps_raw or {})
    return exif


def marker_image(size: tuple[int, int] = (1200, 800), mode: str = "RGB") -> Image.Image:
    """A plain image with a red block in its top-left quarter-ish corner (as stored)."""
    im = Image.new("RGB", size, BODY)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, size[0] // 4, size[1] // 4), fill=MARKER)
    return im.convert(mode) if mode != "RGB" else im


def photo_like(size: tuple[int, int] = (4000, 3000), seed: int = 1) -> Image.Image:
    """Camera-photo-like content: gradients, shapes, blurred and fine noise, so that a
    JPEG of it is about as large as a phone's (12 MP: ~3-5 MB at quality 92)."""
    width, height = size
    rng = random.Random(seed)

    def noise(scale: int, amount: float) -> Image.Image:
        w, h = max(1, width // scale), max(1, height // scale)
        im = Image.frombytes("L", (w, h), rng.randbytes(w * h))
        if scale > 1:
            im = im.resize(size, Image.Resampling.BICUBIC)
        return Image.eval(im, lambda v, a=amount: int(128 + (v - 128) * a))

    vertical = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    channels = []
    for i in range(3):
        base = Image.blend(vertical, radial, 0.3 + 0.2 * i)
        texture = Image.blend(noise(64, 1.0), noise(8, 0.9), 0.5)
        grain = noise(1, 0.5)
        channels.append(Image.blend(Image.blend(base, texture, 0.45), grain, 0.22))
    im = Image.merge("RGB", channels)
    draw = ImageDraw.Draw(im)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(width // 40, width // 6)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=rng.randrange(2, 30))
        else:
            draw.rectangle((x, y, x + r, y + r // 2), fill=colour)
    return im


def encode(
    im: Image.Image, fmt: str, *, exif: Image.Exif | bytes | None = None, **params: object
) -> bytes:
    buffer = io.BytesIO()
    if exif is not None:
        params["exif"] = exif.tobytes() if isinstance(exif, Image.Exif) else exif
    im.save(buffer, fmt, **params)
    return buffer.getvalue()


# ---------------------------------------------------------------- accepted photos


def jpeg_phone_photo(
    size: tuple[int, int] = (3000, 2000), orientation: int = 6, **exif_args: object
) -> bytes:
    """What a phone uploads: EXIF with camera, orientation, capture time (+07:00) and a
    Hoan Kiem geotag, an XMP packet and a JPEG comment."""
    exif_args.setdefault("lat", 21.0288)
    exif_args.setdefault("lon", 105.8525)
    exif_args.setdefault("taken", datetime(2025, 3, 14, 9, 26, 53))
    exif_args.setdefault("offset", "+07:00")
    exif = make_exif(orientation=orientation, **exif_args)  # type: ignore[arg-type]
    return encode(
        marker_image(size),
        "JPEG",
        exif=exif,
        quality=90,
        xmp=xmp_packet(),
        comment=COMMENT_MARKER,
    )


def png_with_alpha(size: tuple[int, int] = (800, 600)) -> bytes:
    """RGBA: left half fully transparent (so white once flattened), right half opaque blue;
    with an eXIf chunk (geotag) and a text chunk."""
    im = Image.new("RGBA", size, (*BODY, 255))
    ImageDraw.Draw(im).rectangle((0, 0, size[0] // 2 - 1, size[1]), fill=(0, 0, 0, 0))
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", COMMENT_MARKER.decode())
    text.add_itxt("XML:com.adobe.xmp", xmp_packet().decode())
    exif = make_exif(lat=21.0288, lon=105.8525)
    return encode(im, "PNG", exif=exif, pnginfo=text)


def webp_photo(size: tuple[int, int] = (1600, 1200), orientation: int = 1) -> bytes:
    exif = make_exif(
        orientation=orientation, lat=10.7769, lon=106.7009, taken="2024:12:31 23:59:59"
    )
    return encode(marker_image(size), "WEBP", exif=exif, xmp=xmp_packet(), quality=85)


def heic_photo(size: tuple[int, int] = (1200, 800), orientation: int = 6) -> bytes:
    """A real HEVC-coded HEIC, as an iPhone writes (pillow-heif's x265 encoder)."""
    exif = make_exif(
        orientation=orientation,
        lat=-33.8568,
        lon=151.2153,
        taken="2025:01:02 03:04:05",
        offset="+11:00",
    )
    return encode(marker_image(size), "HEIF", exif=exif, xmp=xmp_packet(), quality=80)


def mpo_photo(size: tuple[int, int] = (1000, 700)) -> bytes:
    """A two-frame MPO (a JPEG with a second image appended), as some phones write."""
    first = marker_image(size)
    second = Image.new("RGB", size, (0, 200, 0))
    return encode(first, "MPO", save_all=True, append_images=[second], exif=make_exif())


@cache
def jpeg_12mp(quality: int = 92) -> bytes:
    return encode(
        photo_like((4000, 3000)),
        "JPEG",
        quality=quality,
        exif=make_exif(
            orientation=1, lat=21.0288, lon=105.8525, taken="2025:03:14 09:26:53", offset="+07:00"
        ),
    )


# ---------------------------------------------------------------- refused files


def other_formats() -> dict[str, bytes]:
    """Files that are not photos we accept, keyed by a name that would lie about them."""
    small = marker_image((64, 48))
    Image.init()
    avif = encode(small, "AVIF") if "AVIF" in Image.SAVE else None
    files = {
        "photo.jpg (a GIF)": encode(small, "GIF"),
        "photo.png (a BMP)": encode(small, "BMP"),
        "photo.jpg (a TIFF)": encode(small, "TIFF"),
        "photo.heic (a PDF)": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
        "photo.webp (an SVG)": (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
            b'height="10"><rect width="10" height="10"/></svg>'
        ),
        "photo.jpg (random bytes)": random.Random(7).randbytes(4096),
        "photo.jpg (ICO)": encode(small, "ICO"),
    }
    if avif is not None:
        files["photo.heic (an AVIF)"] = avif
    return files


def truncated_jpeg() -> bytes:
    whole = encode(photo_like((800, 600)), "JPEG", quality=90)
    return whole[: len(whole) // 2]


def truncated_png() -> bytes:
    whole = encode(photo_like((400, 300)), "PNG")
    return whole[: len(whole) // 2]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


@cache
def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of width x height, all black: tens of kilobytes on the wire,
    hundreds of megabytes once decoded (Pillow keeps one byte per pixel, RGB three)."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter type 0, then packed pixels
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * 500) for _ in range(height // 500)]
    parts.append(compressor.compress(row * (height % 500)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF) claims width x height."""
    data = bytearray(encode(marker_image((64, 64)), "JPEG"))
    i = 2
    while i < len(data):
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker")


# ---------------------------------------------------------------- colour profiles


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_text = text.encode() + b"\x00"
    return (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + b"\x00" * 8  # no Unicode description
        + b"\x00\x00\x00"  # no ScriptCode description
        + b"\x00" * 67
    )


@cache
def display_p3_icc() -> bytes:
    """A minimal ICC v2 matrix/TRC profile with Display P3 primaries (as on an iPhone),
    gamma 2.2; enough for LittleCMS to convert from, and not sRGB."""
    curve = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, int(2.2 * 256)) + b"\x00\x00"
    tags = [
        (b"desc", _desc("Display P3 (test)")),
        (b"wtpt", _xyz(0.964203, 1.0, 0.824905)),
        (b"rXYZ", _xyz(0.515121, 0.241196, -0.001053)),
        (b"gXYZ", _xyz(0.291977, 0.692245, 0.041885)),
        (b"bXYZ", _xyz(0.157104, 0.066574, 0.784073)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\x00\x00\x00\x00public domain\x00\x00\x00"),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, body = [struct.pack(">I", len(tags))], []
    for signature, payload in tags:
        payload += b"\x00" * (-len(payload) % 4)
        table.append(signature + struct.pack(">II", offset, len(payload)))
        body.append(payload)
        offset += len(payload)
    header = (
        struct.pack(">I", offset)
        + b"\x00\x00\x00\x00"  # CMM
        + b"\x02\x10\x00\x00"  # version 2.1
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2025, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\x00" * 24  # platform, flags, manufacturer, model, attributes
        + b"\x00\x00\x00\x00"  # perceptual intent
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\x00" * 4  # creator
        + b"\x00" * 16  # profile id
        + b"\x00" * 28
    )
    assert len(header) == 128
    return header + b"".join(table) + b"".join(body)


def jpeg_with_profile(icc: bytes, colour: tuple[int, int, int] = (180, 80, 60)) -> bytes:
    return encode(Image.new("RGB", (64, 64), colour), "JPEG", quality=95, icc_profile=icc)
