"""Face restoration for ``diffusers.upscale.faceRestore``: detect, align, restore with GFPGAN, paste back.

Detection uses OpenCV's YuNet (``cv2.FaceDetectorYN``), a maintained detector whose ONNX file
(``face_detection_yunet_2023mar.onnx``, 230 KB) the host puts in the models directory; a host may instead
inject any function ``detect(rgb) -> [{"box": (x, y, w, h), "landmarks": 5×2, "score": s}]``. Each face is
aligned to GFPGAN's 512×512 FFHQ template by a similarity transform of its five landmarks (eyes, nose,
mouth corners), restored, warped back and blended through a feathered mask:
``out = original + strength · mask · (restored − original)``, so strength 0 leaves every pixel unchanged
and 1 pastes the restored face in fully.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import CapabilityError

FACE_SIZE = 512
#: Five-point FFHQ template (image-left eye, image-right eye, nose, mouth left, mouth right) at 512².
TEMPLATE = ((192.98138, 239.94708), (318.90277, 240.1936), (256.63416, 314.01935),
            (201.26117, 371.41043), (313.08905, 371.15118))
BORDER_GRAY = (135, 133, 132)


def _cv2(where: str):
    try:
        import cv2
    except ImportError as e:
        raise CapabilityError(f"{where}: needs OpenCV (opencv-python-headless) for face detection and "
                              "alignment", hint="pip install 'viwoscript[diffusion]'") from e
    return cv2


def yunet_detector(path, where: str, score_threshold: float = 0.7) -> Callable:
    """A detector function backed by OpenCV's YuNet ONNX model at ``path``."""
    cv2 = _cv2(where)
    import numpy as np

    try:
        det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, 0.3, 5000)
    except cv2.error as e:
        raise CapabilityError(f"{where}: cannot load the face detector {path}: {e}"[:400],
                              hint="configure OpenCV's face_detection_yunet_2023mar.onnx") from e

    def detect(rgb) -> list[dict]:
        h, w = rgb.shape[:2]
        det.setInputSize((w, h))
        _, faces = det.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
        out = []
        for row in faces if faces is not None else ():
            out.append({"box": tuple(float(v) for v in row[:4]),
                        "landmarks": np.asarray(row[4:14], dtype=np.float32).reshape(5, 2),
                        "score": float(row[14])})
        return out

    return detect


def _ordered(landmarks):
    """Landmarks in template order (image-left before image-right for eyes and mouth corners)."""
    import numpy as np

    p = np.asarray(landmarks, dtype=np.float32).reshape(5, 2).copy()
    if p[0, 0] > p[1, 0]:
        p[[0, 1]] = p[[1, 0]]
    if p[3, 0] > p[4, 0]:
        p[[3, 4]] = p[[4, 3]]
    return p


def restore_faces(rgb, faces: list[dict], restore: Callable, strength: float, where: str,
                  progress: Callable[[int, int], None] | None = None, max_faces: int = 32):
    """Restore ``faces`` in an H×W×3 uint8 image; ``restore(512×512×3 uint8) -> 512×512×3 uint8``."""
    import numpy as np

    cv2 = _cv2(where)
    h, w = rgb.shape[:2]
    out = rgb.astype(np.float32)
    template = np.asarray(TEMPLATE, dtype=np.float32)
    faces = sorted(faces, key=lambda f: -f.get("score", 1.0))[:max_faces]
    for i, face in enumerate(faces):
        src = _ordered(face["landmarks"])
        m, _ = cv2.estimateAffinePartial2D(src, template, method=cv2.LMEDS)
        if m is None:
            continue
        crop = cv2.warpAffine(rgb, m, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_GRAY)
        restored = restore(crop)
        inv = cv2.invertAffineTransform(m)
        back = cv2.warpAffine(restored, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(np.ones((FACE_SIZE, FACE_SIZE), np.float32), inv, (w, h), flags=cv2.INTER_LINEAR)
        scale = max(1.0, float(np.sqrt(abs(np.linalg.det(inv[:, :2])))) * FACE_SIZE / 512)
        k = max(1, int(round(scale * 10)))
        mask = cv2.erode(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=k)[:, :, None] * float(strength)
        out += mask * (back.astype(np.float32) - out)
        if progress is not None:
            progress(i + 1, len(faces))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), len(faces)


def gfpgan_restorer(net) -> Callable:
    """A ``restore`` function running a loaded GFPGAN (deterministic: no noise injection)."""
    import numpy as np
    import torch

    model = net.descriptor.model

    def restore(crop):
        t = torch.from_numpy(np.array(crop)).to(net.device).permute(2, 0, 1).unsqueeze(0)
        t = (t.to(net.dtype) / 255.0 - 0.5) / 0.5
        with torch.inference_mode():
            y = model(t, return_rgb=False, randomize_noise=False)[0]
        y = ((y.float().clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 0).cpu().numpy()
        return (y * 255.0 + 0.5).astype(np.uint8)

    return restore
