"""Decode, check and normalise one image into the PNG bytes every later stage reads.

Why each step:
- the area is checked from the header *before* decoding, so a 50000x50000 PNG of a few bytes
  (a decompression bomb) costs nothing; Pillow's own bomb warning is turned into a rejection too;
- ``verify`` catches broken chunks/CRCs, then a fresh ``load`` decodes every pixel and catches
  truncation (``verify`` alone does not decode);
- transparency is flattened onto white: geometry diagrams are often black strokes on a
  transparent background, which a plain ``convert("RGB")`` turns into an all-black image;
- the area is brought into ``[min_pixels, max_pixels]`` keeping the aspect ratio, and no side is
  left under 28 px (one Qwen-VL 14 px patch merged 2x2), so the processor can always patch it;
- re-encoding as PNG strips metadata chunks and gives every image one format.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from schemas.ingest import QWEN_PATCH, IngestConfig
from stages.ingest.records import RowReject


@dataclass(frozen=True)
class NormalisedImage:
    png: bytes
    width: int
    height: int
    resized: bool


def target_size(width: int, height: int, config: IngestConfig) -> tuple[int, int]:
    """Size with area in [min_pixels, max_pixels], aspect ratio kept, each side >= 28 px.

    Rounding goes up when enlarging and down when shrinking, so the area bound holds. Only
    an image too elongated to fit (short side 28 px, area still over max_pixels) gives up its
    aspect ratio: its long side is cut to fit.

    >>> target_size(4000, 3000, IngestConfig(max_pixels=1_200_000))
    (1264, 948)
    >>> target_size(10, 10, IngestConfig())
    (56, 56)
    """
    area = width * height
    scale = 1.0
    if area > config.max_pixels:
        scale = math.sqrt(config.max_pixels / area)
    elif area < config.min_pixels:
        scale = math.sqrt(config.min_pixels / area)
    scale = max(scale, QWEN_PATCH / min(width, height))  # short side up to 28 px, ratio kept
    if scale == 1.0:
        return width, height
    rounding = (lambda x: math.ceil(x - 1e-9)) if scale > 1 else (lambda x: math.floor(x + 1e-9))
    new_w, new_h = max(QWEN_PATCH, rounding(width * scale)), max(QWEN_PATCH, rounding(height * scale))
    if new_w * new_h > config.max_pixels:
        if new_w >= new_h:
            new_w = max(QWEN_PATCH, config.max_pixels // new_h)
        else:
            new_h = max(QWEN_PATCH, config.max_pixels // new_w)
    return new_w, new_h


def _check_header(image: Image.Image, config: IngestConfig) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise RowReject("image_decode", f"image declares size {width}x{height}")
    if width * height > config.max_image_pixels:
        raise RowReject(
            "image_too_large",
            f"{width}x{height} = {width * height} pixels > max_image_pixels {config.max_image_pixels}",
        )
    ratio = max(width, height) / min(width, height)
    if ratio > config.max_aspect_ratio:
        raise RowReject(
            "image_aspect", f"{width}x{height}: aspect ratio {ratio:.0f} > {config.max_aspect_ratio:g}"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I;16"):  # Pillow clips 16-bit values to 255 (white): keep the top 8 bits
        image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def decode(data: bytes, config: IngestConfig) -> Image.Image:
    """A fully decoded image, or ``RowReject`` saying why not (empty, bomb, corrupt, truncated)."""
    if not data:
        raise RowReject("image_empty", "image has 0 bytes")
    if len(data) > config.max_image_bytes:
        raise RowReject("image_too_large", f"{len(data)} bytes > max_image_bytes {config.max_image_bytes}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                _check_header(probe, config)
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
        except RowReject:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise RowReject("image_too_large", str(err)) from None
        except Image.UnidentifiedImageError:
            raise RowReject("image_decode", f"not a recognised image format ({len(data)} bytes)") from None
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - decoders raise many types on hostile bytes
            raise RowReject("image_decode", f"{type(err).__name__}: {err}") from None
    return image


def normalise_image(data: bytes, config: IngestConfig) -> NormalisedImage:
    """Decode ``data`` and return it as an RGB PNG sized for the model."""
    image = decode(data, config)
    try:
        image = ImageOps.exif_transpose(image)  # photos: store what the camera meant, not the sensor
        image = _to_rgb(image)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - e.g. a broken EXIF block
        raise RowReject("image_decode", f"{type(err).__name__}: {err}") from None
    size = target_size(image.width, image.height, config)
    resized = size != image.size
    if resized:
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=config.png_compress_level)
    return NormalisedImage(buffer.getvalue(), image.width, image.height, resized)
