"""SIFID and LPIPS diversity: the two metrics of the paper's Table 1 that need pretrained networks.

The networks are built here in plain torch with the module names of torchvision's models, so the
state dicts of the usual weight files load into them by key (torchvision is not needed):

- SIFID (Shaham, Dekel, Michaeli, SinGAN, ICCV 2019): the Fréchet distance between Gaussians fitted to the
  64-channel Inception-v3 features, one per spatial position, of the real and the generated image. The
  features are those of SinGAN's SIFID code: the first block of Inception-v3 (three 3×3 convolutions
  with batch norm and ReLU, then a 3×3 stride-2 max-pool), the input scaled to [-1, 1], not resized.
  Weights: torchvision's ImageNet Inception-v3 (``inception_v3_google-0cc3c7bd.pth``) or pytorch-fid's
  (``pt_inception-2015-12-05-6726825d.pth``); both name these layers ``Conv2d_1a_3x3.conv.weight`` … .
- LPIPS (Zhang et al., CVPR 2018), AlexNet variant: unit-normalise the channels of five ReLU layers of
  AlexNet, square the difference, weight the channels by the learned 1×1 "lin" layers, average over
  space, sum over layers. Weights: torchvision's AlexNet (``alexnet-owt-7be5be79.pth``) and LPIPS's
  linear layers (``alex.pth`` of the ``lpips`` package, folder ``lpips/weights/v0.1``).
  LPIPS diversity: the mean LPIPS distance over all pairs of samples of one input.

Nothing is downloaded: files are looked up in the ``weights`` argument, ``$SIDLITE_WEIGHTS``, torch's
hub checkpoint folder, an installed ``lpips`` package (``alex.pth``) and an installed ``basicsr``
package (NIQE's pristine model, see :mod:`.niqe`), and a missing file raises
a one-line :class:`SidliteError` naming it and where to get it.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SidliteError

#: kind -> (accepted file names, where to get the first, what the file is, for errors)
WEIGHT_FILES = {
    "inception": (["inception_v3_google-0cc3c7bd.pth", "pt_inception-2015-12-05-6726825d.pth"],
                  "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth (torchvision)",
                  "Inception weights"),
    "alexnet": (["alexnet-owt-7be5be79.pth"],
                "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth (torchvision)", "AlexNet weights"),
    "lpips_alex": (["alex.pth"], "the lpips package (pip install lpips), file lpips/weights/v0.1/alex.pth",
                   "LPIPS linear-layer weights"),
    "niqe": (["niqe_pris_params.npz", "modelparameters.mat"],
             "the NIQE release (live.ece.utexas.edu/research/quality/niqe_release.zip) or BasicSR (pip install "
             "basicsr, file basicsr/metrics/niqe_pris_params.npz)", "NIQE's pristine model"),
}


def _search_folders() -> list[Path]:
    folders = []
    if os.environ.get("SIDLITE_WEIGHTS"):
        folders.append(Path(os.environ["SIDLITE_WEIGHTS"]))
    folders.append(Path(torch.hub.get_dir()) / "checkpoints")
    for package, folder in (("lpips", "weights/v0.1"), ("basicsr", "metrics")):
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            folders.append(Path(spec.origin).parent / folder)
    return folders


def find_weights(kind: str, weights: str | Path | None = None) -> Path:
    """The local weights file for ``kind`` ('inception', 'alexnet', 'lpips_alex', or 'niqe' for NIQE's
    pristine model), offline; a one-line SidliteError naming the file and where to get it when it is absent."""
    names, source, what = WEIGHT_FILES[kind]
    if weights is not None:
        path = Path(weights)
        if path.is_file():
            return path
        raise SidliteError(f"{what} not found at {path}; get {names[0]} from {source}")
    for folder in _search_folders():
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise SidliteError(f"{what} not found: put {names[0]} (from {source}) in $SIDLITE_WEIGHTS or "
                       f"{Path(torch.hub.get_dir()) / 'checkpoints'}, or pass its path")


def _load(module: nn.Module, path: Path, prefixes: tuple[str, ...]) -> nn.Module:
    """Load the keys of ``module`` from a state-dict file that may hold more (e.g. a classifier)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if k.startswith(prefixes)}
    missing, _ = module.load_state_dict(state, strict=False)
    if missing:
        raise SidliteError(f"{path} lacks the weights {missing[:3]}…; is it the right file?")
    return module.eval()


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (ε = 0.001), ReLU: Inception-v3's unit (keys conv.*, bn.*)."""

    def __init__(self, cin: int, cout: int, **options):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **options)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class InceptionBlock1(nn.Module):
    """Inception-v3 up to the first max-pool: the 64-channel features SinGAN's SIFID uses."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, 64, H', W')."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(image)))
        return F.max_pool2d(x, kernel_size=3, stride=2)

    @classmethod
    def pretrained(cls, weights: str | Path | None = None) -> "InceptionBlock1":
        return _load(cls(), find_weights("inception", weights), ("Conv2d_1a", "Conv2d_2a", "Conv2d_2b"))


def _frechet(mu1, cov1, mu2, cov2) -> float:
    """‖μ1 − μ2‖² + tr(C1 + C2 − 2(C1 C2)^{1/2}); tr (C1 C2)^{1/2} = Σ √eig(C1^{1/2} C2 C1^{1/2})."""
    values, vectors = torch.linalg.eigh(cov1)
    root1 = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp_min(0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * middle)


def _gaussian(features: torch.Tensor):
    """Mean and (unbiased) covariance of the (C, H', W') features over positions."""
    rows = features.flatten(1).T.double()
    return rows.mean(0), torch.cov(rows.T)


@torch.no_grad()
def sifid(sample: torch.Tensor, reference: torch.Tensor, network: nn.Module | None = None) -> float:
    """SIFID of one sample against its input, (3, H, W) tensors in [-1, 1] (0: same feature statistics)."""
    network = network or InceptionBlock1.pretrained()
    device = next(network.parameters()).device
    a = network(sample[None].float().to(device))[0].cpu()
    b = network(reference[None].float().to(device))[0].cpu()
    return _frechet(*_gaussian(b), *_gaussian(a))


class _Lin(nn.Module):
    """LPIPS's learned channel weights (keys lin{l}.model.1.weight, shape (1, C, 1, 1))."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPSAlex(nn.Module):
    """LPIPS with AlexNet features (the variant the diversity numbers use)."""

    CHANNELS = (64, 192, 384, 256, 256)
    TAPS = (1, 4, 7, 9, 11)  # the ReLU after each convolution of torchvision's AlexNet.features
    SHIFT = (-0.030, -0.088, -0.188)
    SCALE = (0.458, 0.448, 0.450)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())
        for l, c in enumerate(self.CHANNELS):
            setattr(self, f"lin{l}", _Lin(c))
        self.register_buffer("shift", torch.tensor(self.SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(self.SCALE)[None, :, None, None])

    def taps(self, image: torch.Tensor) -> list[torch.Tensor]:
        x, out = (image - self.shift) / self.scale, []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per pair of (B, 3, H, W) images in [-1, 1], shape (B,)."""
        total = 0
        for l, (fa, fb) in enumerate(zip(self.taps(a), self.taps(b))):
            total = total + getattr(self, f"lin{l}").model((fa - fb) ** 2).mean((1, 2, 3))
        return total

    @classmethod
    def pretrained(cls, weights: str | Path | None = None, lin_weights: str | Path | None = None) -> "LPIPSAlex":
        net = cls()
        state = torch.load(find_weights("alexnet", weights), map_location="cpu", weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")}, strict=False)
        lin = torch.load(find_weights("lpips_alex", lin_weights), map_location="cpu", weights_only=True)
        missing = set(net.state_dict()) - set(state) - set(lin) - {"shift", "scale"}
        net.load_state_dict(lin, strict=False)
        if missing:
            raise SidliteError(f"LPIPS weights lack {sorted(missing)[:3]}…; are they the right files?")
        return net.eval()


@torch.no_grad()
def lpips_diversity(samples: torch.Tensor, network: nn.Module | None = None) -> float:
    """Mean LPIPS distance over all pairs of a (S >= 2, 3, H, W) batch of samples of one input."""
    if samples.shape[0] < 2:
        raise SidliteError("LPIPS diversity needs at least two samples")
    network = network or LPIPSAlex.pretrained()
    device = next(network.parameters()).device
    i, j = torch.triu_indices(samples.shape[0], samples.shape[0], 1)
    x = samples.float().to(device)
    return float(network(x[i], x[j]).mean())
