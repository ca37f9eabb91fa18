"""Several networks of one architecture run as one: weights stacked along a leading member axis.

Small networks on tables cost a step's fixed overhead (Python dispatch, kernel launches, the
optimizer's per-tensor work), not arithmetic, so ``k`` of them train for little more than one
when each layer runs the ``k`` members' weights in one batched matrix product. The stacked
network takes inputs with a leading member axis, ``(k, n, features)``, and returns outputs with
one; its parameters are new tensors of shape ``(k, *shape)``, independent of the members',
which :func:`copy_stacked_into` writes back.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from .equalized import EqualizedLinear

__all__ = ["StackedLinear", "copy_stacked_into", "stack_networks"]


class StackedLinear(nn.Module):
    """``k`` linear layers of one shape run as one batched product.

    Parameters
    ----------
    layers : sequence of torch.nn.Linear or EqualizedLinear
        The members' layers, all of one kind and shape; their weights are copied.

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (k, out_features, in_features)
        The members' weights, stacked.
    bias : torch.nn.Parameter of shape (k, out_features) or None
        The members' biases, stacked.
    weight_scale : float
        The run-time weight scale of equalized-lr layers (1 for ``torch.nn.Linear``).

    Examples
    --------
    >>> import torch
    >>> from skood.nn import StackedLinear
    >>> layers = [torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)]
    >>> stacked = StackedLinear(layers)
    >>> x = torch.randn(2, 5, 3)
    >>> torch.allclose(stacked(x)[1], layers[1](x[1]), atol=1e-6)
    True
    """

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        first = layers[0]
        kinds = {type(layer) for layer in layers}
        shapes = {tuple(layer.weight.shape) for layer in layers}
        if len(kinds) != 1 or len(shapes) != 1:
            raise ValueError("StackedLinear needs layers of one kind and one shape.")
        if any((layer.bias is None) != (first.bias is None) for layer in layers):
            raise ValueError("StackedLinear needs layers that all have a bias, or none.")
        scales = {float(getattr(layer, "weight_scale", 1.0)) for layer in layers}
        if len(scales) != 1:
            raise ValueError("StackedLinear needs equalized layers of one weight scale.")
        self.weight_scale = scales.pop()
        with torch.no_grad():
            self.weight = nn.Parameter(torch.stack([layer.weight for layer in layers]))
            self.bias = (
                None
                if first.bias is None
                else nn.Parameter(torch.stack([layer.bias for layer in layers]))
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply member ``i``'s layer to ``x[i]``.

        Parameters
        ----------
        x : torch.Tensor of shape (k, n, in_features)
            One batch per member.

        Returns
        -------
        torch.Tensor of shape (k, n, out_features)
            Each member's outputs.
        """
        weight = self.weight if self.weight_scale == 1.0 else self.weight * self.weight_scale
        if self.bias is None:
            return torch.bmm(x, weight.transpose(1, 2))
        return torch.baddbmm(self.bias.unsqueeze(1), x, weight.transpose(1, 2))

    def extra_repr(self) -> str:
        members, out_features, in_features = self.weight.shape
        return f"members={members}, in_features={in_features}, out_features={out_features}"


def _is_linear(module: nn.Module) -> bool:
    return type(module) in (nn.Linear, EqualizedLinear)


def stack_networks(networks: Sequence[nn.Module]) -> nn.Module:
    """One network that runs ``networks`` (one architecture) side by side on stacked inputs.

    A copy of the first network in which every linear layer (:class:`torch.nn.Linear`,
    :class:`~skood.nn.EqualizedLinear`) becomes a :class:`StackedLinear` of the members'
    layers and every buffer the stack of the members' buffers, so that the network's own
    ``forward`` (and its other methods) run on tensors with a leading member axis as long as
    they act on the last axes only (``ScaledLatentGenerator``, ``DiscriminatorEncoder``, the
    MLPs and :class:`~skood.nn.realnvp.RealNVPTabular` do). A module's own parameters stack
    too where its class names them in ``stackable_parameters`` (parameters that broadcast
    against inputs with a leading member axis, such as the ``(1, D)`` log-scale multipliers of
    :class:`~skood.nn.realnvp.AffineCoupling`).

    Parameters
    ----------
    networks : sequence of torch.nn.Module
        The members, with one structure; their parameters and buffers are copied, not shared.

    Returns
    -------
    stacked : torch.nn.Module
        The network of stacked members.

    Raises
    ------
    TypeError
        If a layer with parameters is neither a linear layer nor a module whose parameters
        all stack (convolutions, normalisation): such networks do not stack.
    ValueError
        If the networks differ in structure.

    Examples
    --------
    >>> import torch
    >>> from skood.nn import MLP, stack_networks
    >>> members = [MLP(3, (8,), 2, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    >>> stacked = stack_networks(members)
    >>> x = torch.randn(4, 10, 3)
    >>> stacked(x).shape
    torch.Size([4, 10, 2])
    >>> torch.allclose(stacked(x)[2], members[2](x[2]), atol=1e-5)
    True
    """
    networks = list(networks)
    if not networks:
        raise ValueError("stack_networks needs at least one network.")
    names = [name for name, _ in networks[0].named_modules()]
    if any([name for name, _ in network.named_modules()] != names for network in networks):
        raise ValueError("stack_networks needs networks of one structure.")
    if _is_linear(networks[0]):
        return StackedLinear(networks)
    stacked = copy.deepcopy(networks[0])
    member_modules = [dict(network.named_modules()) for network in networks]
    for name, module in list(stacked.named_modules()):
        if _is_linear(module):
            _replace(stacked, name, StackedLinear([modules[name] for modules in member_modules]))
            continue
        own = [parameter_name for parameter_name, _ in module.named_parameters(recurse=False)]
        stackable = getattr(type(module), "stackable_parameters", ())
        if any(parameter_name not in stackable for parameter_name in own):
            raise TypeError(
                f"stack_networks stacks linear layers only; {name or 'the network'} is a "
                f"{type(module).__name__} with parameters."
            )
        for parameter_name in own:
            values = [modules[name].get_parameter(parameter_name) for modules in member_modules]
            with torch.no_grad():
                setattr(module, parameter_name, nn.Parameter(torch.stack(values).clone()))
        for buffer_name, _ in list(module.named_buffers(recurse=False)):
            values = [modules[name].get_buffer(buffer_name) for modules in member_modules]
            module.register_buffer(buffer_name, torch.stack(values).detach().clone())
    return stacked


def _replace(root: nn.Module, name: str, replacement: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, replacement)


@torch.no_grad()
def copy_stacked_into(stacked: nn.Module, networks: Sequence[nn.Module]) -> None:
    """Write the stacked network's parameters and buffers back into its members.

    Parameters
    ----------
    stacked : torch.nn.Module
        A network made by :func:`stack_networks` (then trained, say).
    networks : sequence of torch.nn.Module
        The members it was made from, in that order; updated in place.
    """
    parameters = dict(stacked.named_parameters())
    buffers = dict(stacked.named_buffers())
    for index, network in enumerate(networks):
        for name, parameter in network.named_parameters():
            parameter.copy_(parameters[name][index])
        for name, buffer in network.named_buffers():
            buffer.copy_(buffers[name][index])
