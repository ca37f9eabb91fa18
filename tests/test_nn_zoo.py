"""The network zoo of ``skood.nn``: seeded initialisation, the MLP builder and InvGAN's networks.

Every network must draw the same numbers in the same order from its ``torch.Generator`` as the
hand-written initialisations it replaced (so that fitted scores do not move), and none may touch
PyTorch's global random state.
"""

import hashlib
import math

import pytest
import torch
from torch import nn

from skood.invgan import InvGANDetector
from skood.nn import (
    MLP,
    DiscriminatorEncoder,
    conv_networks,
    default_bound,
    default_init_,
    invgan_networks,
    make_linear,
    running_statistics_kept,
    seeded_layer,
    zero_init_,
)
from skood.nn.classifier import RejectionHead, conv_classifier, mlp_classifier
from skood.nn.realnvp import RealNVPImage, RealNVPTabular

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

# name -> builder of a network from a generator.
BUILDERS = {
    "mlp_eq": lambda gen: MLP(5, (8, 4), 3, generator=gen),
    "mlp_plain": lambda gen: MLP(5, (8, 4), 3, equalized_lr=False, generator=gen),
    "mlp_body": lambda gen: MLP(5, (6,), None, equalized_lr=False, generator=gen),
    "mlp_empty": lambda gen: MLP(5, (), 2, equalized_lr=False, generator=gen),
    "linear": lambda gen: make_linear(7, 3, equalized_lr=False, generator=gen),
    "disc_enc": lambda gen: DiscriminatorEncoder(
        MLP(5, (8,), None, equalized_lr=False, generator=gen),
        3,
        log_variance_head=True,
        equalized_lr=False,
        generator=gen,
    ),
    "mlp_clf": lambda gen: mlp_classifier(5, (8, 4), 3, generator=gen),
    "conv_clf": lambda gen: conv_classifier((1, 8, 8), (16,), 3, channels=(4, 8), generator=gen),
    "conv_clf3": lambda gen: conv_classifier((3, 8, 8), (8, 4), 2, generator=gen),
    "rejection": lambda gen: RejectionHead(6, 5, generator=gen),
    "nvp_tab": lambda gen: RealNVPTabular(4, n_couplings=3, hidden_dims=(8, 8), generator=gen),
    "nvp_tab5": lambda gen: RealNVPTabular(5, n_couplings=2, hidden_dims=(3,), generator=gen),
    "nvp_img": lambda gen: RealNVPImage((1, 8, 8), n_blocks=1, mid_channels=4, generator=gen),
    "nvp_img3": lambda gen: RealNVPImage((3, 8, 8), n_blocks=2, mid_channels=4, generator=gen),
    "conv_small_False": lambda gen: nn.ModuleList(
        conv_networks("small", 4, (1, 8, 8), equalized_lr=False, generator=gen)
    ),
    "conv_small_True": lambda gen: nn.ModuleList(
        conv_networks("small", 4, (1, 8, 8), equalized_lr=True, generator=gen)
    ),
}

# SHA-256 of every state-dict key and tensor's bytes, recorded with the hand-written
# initialisations (commit 07e7415, torch 2.13 on CPU) before they became skood.nn.init.
DIGESTS = {
    "mlp_eq": {
        0: "1b892e0d233d12d265ad8a4ec9a52a334b800758031666436e775dca076438f4",
        7: "44b584c0e1e9945c7a26329de30963401f83f6b55db87595dfae67f0f6057c92",
    },
    "mlp_plain": {
        0: "5072e48fc432521817d9bb6150c80d75be9d8cbc2adc71dc755084d627cb3fae",
        7: "45f6e64dbc66e694ee8cecb233e07f9e2c5d85df317e5815af11f20cec24a48f",
    },
    "mlp_body": {
        0: "f3e3675470ca0e2610683476441cbd11dfecbb5dfe33374d38b6ee1eb9f29cc6",
        7: "ee9f4e82ba1d3441b813548f60e71daab443320a424eb6cdf089b792a968728e",
    },
    "mlp_empty": {
        0: "2493a76198a0c353094c363897d65797c9266ce77608f034c364139854435e31",
        7: "b21de88039971fff3f7065938dee2f3abb54588e596f80b1c63b77602db65cf4",
    },
    "linear": {
        0: "825763ec9a26bcdb5cbc1ce07685aef59464c259279df81fc944d7f8c6c10c1a",
        7: "2521f619e59cf93e16b9312a7d401c004ae4d57a98112c53415a89c611734e33",
    },
    "disc_enc": {
        0: "f07b9694fc3ee5812a65c1af68443ef57ba6fb26d92d4a75eacfffc634e42861",
        7: "e882a3df9d452b66591829ad3b12246359faf18797b14e03ceaaa4d6e329c894",
    },
    "mlp_clf": {
        0: "7f753ef4eaeecbb3aee28e7a58232dcabf0a1f7a933df449ed9e39321bb35194",
        7: "6488b99a26c26b92ebfc76e0573c52ed5fe3ff53209807bbb80b796d88521673",
    },
    "conv_clf": {
        0: "1990cc7d814c1ccbe6778887477f8ee68b3ed86bff6006c7d681e686c710005f",
        7: "522319693e207afd9dca07c73cb758d7f4c0bfa104cd1cbfb6d19912d3dd5bf4",
    },
    "conv_clf3": {
        0: "585742f1d111388bc2b1e1a054968ae070d88dea1da00a6df1347dcad5a08349",
        7: "c6afb8eab7bc2daa5291f3ac95f38decf437cf34fbbb8d598902d14687dbfa5f",
    },
    "rejection": {
        0: "d2e73bb418e93fee2c043ee7a7da67e6025cfae2ea56f52b1fc10d609907e1c3",
        7: "13f45f59261b142c2c45b7f65fff7c9ee54bf820aa44d67a3b6ad5f888f902b3",
    },
    "nvp_tab": {
        0: "a532bc9e62bd7afaa1283f790b3db828f752dcff0c292698ad45c85ab8506d2b",
        7: "868720d1e7d4f7eb26457f5319008658423d41a47cd2ae3d1f4f771189d6f719",
    },
    "nvp_tab5": {
        0: "6b34f99bd66cf5b30d3a8a11f4cfb10916e81fbbf43d2f6e9ba9365bcc20a8d7",
        7: "e40dd8d80b4dc40bc796db2f5df3c81afebee1b2710f527a1f3ed85cea71f586",
    },
    "nvp_img": {
        0: "a45acfaf415a133f9a0c85903ce7f944d04f2fa7602d9019db4ae138f7c407bf",
        7: "51b60a0b22283d821e8233a6dab0c9b79f7c2f3f86ee4a5139cf0f5d71f8b88d",
    },
    "nvp_img3": {
        0: "56c44124d92ef57bddc86e8a9d21a812f52df18a0b275db1385811ae672fe03f",
        7: "d274bcd0878b3f2455b649381e4115c4c19f61af32c6f82e98304d7582bad04b",
    },
    "conv_small_False": {
        0: "0189c6ed10aae8128ddf301667b9a255e452b44e162c6f59bc98a4986a23eb62",
        7: "6bb9f71a8e7d8584939bfb3ac6f516517c9f5dcc11f1e5ee457a47a0bb8a250c",
    },
    "conv_small_True": {
        0: "c9bca94d5e28218af55944f95f577a8af6b5805804576756f3a6f01cb42b3345",
        7: "e840de50bc30071a082a35c97ea5b392abf71c375ecc4d7416875035d4b6a97a",
    },
}


def _digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _assert_same_state(left: nn.Module, right: nn.Module) -> None:
    left_state, right_state = left.state_dict(), right.state_dict()
    assert list(left_state) == list(right_state)
    for key, value in left_state.items():
        assert value.dtype == right_state[key].dtype, key
        assert torch.equal(value, right_state[key]), key


@pytest.mark.parametrize(
    ("name", "seed"), [(name, seed) for name, by_seed in DIGESTS.items() for seed in by_seed]
)
def test_networks_draw_what_they_drew_before(name, seed):
    before = torch.random.get_rng_state()
    network = BUILDERS[name](torch.Generator().manual_seed(seed))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert _digest(network) == DIGESTS[name][seed]


# ---------------------------------------------------------------------- init helpers
@pytest.mark.parametrize(
    ("layer_class", "args", "fan_in"),
    [
        (nn.Linear, (7, 3), 7),
        (nn.Conv2d, (4, 6, 3), 4 * 9),
        # PyTorch counts a transposed convolution's output channels (weight.size(1)).
        (nn.ConvTranspose2d, (4, 6, 3), 6 * 9),
    ],
)
def test_seeded_layer_draws_weight_then_bias_within_the_default_bound(layer_class, args, fan_in):
    before = torch.random.get_rng_state()
    layer = seeded_layer(layer_class, *args, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), before)
    bound = 1.0 / math.sqrt(fan_in)
    assert default_bound(layer.weight) == bound
    # The same draws by hand: weight first, then bias, one generator.
    reference = torch.Generator().manual_seed(3)
    weight = torch.empty_like(layer.weight).uniform_(-bound, bound, generator=reference)
    bias = torch.empty_like(layer.bias).uniform_(-bound, bound, generator=reference)
    assert torch.equal(layer.weight, weight)
    assert torch.equal(layer.bias, bias)
    assert layer.weight.requires_grad and layer.weight.grad_fn is None


def test_default_init_redraws_a_built_layer_as_seeded_layer_builds_it():
    # Re-initialising a layer that PyTorch built (as InvGAN once did) gives the same numbers.
    layer = default_init_(nn.Conv2d(3, 5, 3), torch.Generator().manual_seed(0))
    reference = seeded_layer(nn.Conv2d, 3, 5, 3, generator=torch.Generator().manual_seed(0))
    _assert_same_state(layer, reference)


def test_zero_layers_draw_nothing():
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    layer = seeded_layer(nn.Conv2d, 3, 2, 1, generator=generator, zero=True)
    assert torch.equal(generator.get_state(), state)
    assert not layer.weight.any() and not layer.bias.any()
    assert zero_init_(nn.Linear(3, 2, bias=False)).bias is None


# ---------------------------------------------------------------------- the MLP builder
def test_mlp_puts_batch_norm_between_linear_and_activation():
    network = MLP(4, (8, 6), 2, activation="relu", batch_norm=True, equalized_lr=False)
    kinds = [type(layer) for layer in network]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear]
    assert network.out_features == 2
    assert "1.running_mean" in network.state_dict()


def test_mlp_zero_output_starts_at_zero_and_draws_nothing_for_it():
    generator = torch.Generator().manual_seed(0)
    network = MLP(
        4, (8,), 6, activation="relu", zero_output=True, equalized_lr=False, generator=generator
    )
    assert not network[-1].weight.any() and not network[-1].bias.any()
    # Only the hidden layer drew: the generator is where one Linear(4, 8) leaves it.
    reference = torch.Generator().manual_seed(0)
    seeded_layer(nn.Linear, 4, 8, generator=reference)
    assert torch.equal(generator.get_state(), reference.get_state())


@pytest.mark.parametrize(
    "options",
    [
        {"activation": "tanh"},
        {"zero_output": True},  # equalized layers cannot start at zero without drawing
        {"zero_output": True, "equalized_lr": False, "out_features": None},
    ],
)
def test_mlp_refuses_inconsistent_options(options):
    options = {"out_features": 2, **options}
    out_features = options.pop("out_features")
    with pytest.raises(ValueError, match="activation|zero_output"):
        MLP(3, (4,), out_features, **options)


# ---------------------------------------------------------------------- InvGAN's networks
INVGAN_CASES = {
    "table": ({"hidden_dims": (16, 8), "batch_norm": False}, 5, 3),
    "table_batch_norm": ({"hidden_dims": (16, 8), "batch_norm": True}, 5, 3),
    "table_one_hidden": ({"hidden_dims": (7,), "batch_norm": True}, 4, 4),
    "image_1x8x8": ({"input_shape": (1, 8, 8)}, 64, 4),
    "image_3x16x16": ({"input_shape": (3, 16, 16)}, 768, 6),
}


@pytest.mark.parametrize("seed", [0, 5, 123_456])
@pytest.mark.parametrize("case", list(INVGAN_CASES))
def test_invgan_networks_are_the_detector_networks(case, seed):
    params, n_features, latent_dim = INVGAN_CASES[case]
    detector = InvGANDetector(latent_dim=latent_dim, **params)
    n_centres = latent_dim + 2
    centres = torch.randn(n_centres, latent_dim, generator=torch.Generator().manual_seed(1))
    bandwidths = torch.linspace(0.5, 1.5, n_centres, dtype=torch.float64)
    # The fitted attributes the detector builds its networks from (_prepare_networks sets them).
    detector.latent_dim_, detector.n_centres_ = latent_dim, n_centres
    detector.centres_, detector.bandwidths_ = centres.double().numpy(), bandwidths.numpy()
    networks = detector._build_networks(n_features, seed)
    expected = [networks[name] for name in ("module", "discriminator", "inference")]
    expected_variance = networks["variance"]

    init = torch.Generator().manual_seed(seed)
    before = torch.random.get_rng_state()
    built = invgan_networks(
        n_features,
        latent_dim,
        hidden_dims=detector.hidden_dims,
        batch_norm=detector.batch_norm,
        input_shape=detector.input_shape,
        generator=init,
    )
    assert torch.equal(torch.random.get_rng_state(), before)
    for network, reference in zip(built, expected, strict=True):
        _assert_same_state(network, reference)
        assert network.training == reference.training
    # The same number of draws: the RBF network built next from the generator matches too.
    variance = type(expected_variance)(
        centres.double(), bandwidths, n_features, floor=detector.precision_floor, generator=init
    )
    _assert_same_state(variance, expected_variance)


def test_invgan_networks_shapes():
    generator = torch.Generator().manual_seed(0)
    g, critic, h = invgan_networks(768, 6, input_shape=(3, 16, 16), generator=generator)
    z = torch.zeros(2, 6)
    assert g(z).shape == (2, 768)
    assert critic(torch.zeros(2, 768)).shape == (2, 1)
    assert h(torch.zeros(2, 768)).shape == (2, 6)


def test_running_statistics_kept_restores_batch_norm_buffers():
    _, _, inference = invgan_networks(5, 2, hidden_dims=(4,), generator=torch.Generator())
    state = {key: value.clone() for key, value in inference.state_dict().items()}
    with running_statistics_kept(inference):
        inference(torch.randn(8, 5))
    for key, value in inference.state_dict().items():
        assert torch.equal(value, state[key]), key
