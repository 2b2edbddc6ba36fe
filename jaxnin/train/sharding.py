"""Data parallelism over every visible device, with JAX's own runtime: a Mesh, NamedShardings.

One Mesh spans all devices of all processes along a single "data" axis. Splits live sharded
along their examples, the train state is replicated, and inside the jitted steps each gathered
batch is constrained to be split along "data": XLA's SPMD partitioner then turns the very same
programs into per-device work plus an all-reduce of the gradients. So one code path serves 1
and N devices, on one host or many, and the global batch, the loss (a mean over the global
batch) and the lr keep their meaning. Outside a mesh (research code calling the steps
directly) the constraints do nothing.
"""
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxnin.data.pipeline import DeviceSplit
from jaxnin.errors import JaxninError

DATA = "data"


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, auto: bool = False) -> bool:
    """jax.distributed.initialize() when asked (`auto`, any argument, or the environment's
    JAX_COORDINATOR_ADDRESS); without arguments JAX reads them from the cluster (SLURM, ...).

    Call before anything touches a device. Returns whether the run is distributed.
    """
    explicit = (coordinator, num_processes, process_id)
    if not (auto or any(v is not None for v in explicit)
            or os.environ.get("JAX_COORDINATOR_ADDRESS")):
        return False
    try:
        jax.distributed.initialize(*explicit)
    except (ValueError, RuntimeError) as err:
        raise JaxninError(f"cannot start the distributed runtime ({err}): give `coordinator` "
                          "HOST:PORT, `num_processes` N and `process_id` I, or launch under "
                          "SLURM (srun) so that JAX finds them") from None
    return True


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process) named "data"."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA,))


def mesh_record(mesh: Mesh) -> dict:
    """run.json's account of the mesh: its axis names and their sizes."""
    return {"axes": list(mesh.axis_names), "shape": [int(n) for n in mesh.devices.shape]}


def check_batch_size(batch_size: int, devices: int) -> None:
    """Each device takes global / N examples of every batch; refuse a batch that won't split."""
    if batch_size % devices:
        lower = max(devices, batch_size // devices * devices)
        raise JaxninError(f"`batch_size` {batch_size} does not split over the {devices} devices "
                          f"(each takes global / {devices} examples): use a multiple of "
                          f"{devices}, e.g. {lower} or {lower + devices}")


def shard_split(images: np.ndarray, labels: np.ndarray, mesh: Mesh) -> DeviceSplit:
    """A split sharded along its examples over `mesh`, padded to a multiple of its size.

    Every process holds the whole split on the host but places only the shards of its own
    devices. The padding (zeros) lies past `count`, where no order ever reaches.
    """
    sharding = NamedSharding(mesh, P(DATA))
    place = lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
    pad = lambda x: padded_to_multiple(x, mesh.shape[DATA])
    return DeviceSplit(place(pad(np.asarray(images, np.uint8))),
                       place(pad(np.asarray(labels, np.int32))), len(labels))


def padded_to_multiple(examples: np.ndarray, devices: int) -> np.ndarray:
    """`examples` with zeros appended along the first axis up to a multiple of `devices`."""
    count = len(examples)
    padded = -(-count // devices) * devices
    return np.concatenate([examples, np.zeros((padded - count, *examples.shape[1:]),
                                              examples.dtype)])


# With --shard-params, arrays of at least this many elements are split over the devices
# (FSDP-style); smaller ones stay replicated, as gathering them would cost more than they weigh.
SHARD_MIN_SIZE = 2 ** 18


def state_spec(shape: tuple[int, ...], devices: int, shard_params: bool) -> P:
    """Where a state array lives: everywhere, or (with `shard_params`, when it is large) split
    along its largest axis that the device count divides. A pure function of the shape, so the
    placement and the constraint inside the step always agree."""
    if shard_params and devices > 1 and np.prod(shape, dtype=np.int64) >= SHARD_MIN_SIZE:
        for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
            if shape[axis] % devices == 0:
                return P(*[None] * axis, DATA)
    return P()


def place_state(state, mesh: Mesh, shard_params: bool = False):
    """The train state on every device of `mesh` (all processes): replicated, or FSDP-style
    with `shard_params` (see state_spec), the optimizer state sharded like the params."""
    def place(x):
        sharding = NamedSharding(mesh, state_spec(np.shape(x), mesh.size, shard_params))
        return jax.make_array_from_callback(np.shape(x), sharding, lambda index: x[index])

    return jax.tree.map(place, jax.device_get(state))


def state_over_devices(state, shard_params: bool):
    """Inside a jitted epoch or step: keep the new state where place_state put the old one, so
    XLA never picks another layout (which would recompile the next call)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA not in mesh.axis_names:
        return state
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(
        x, state_spec(x.shape, mesh.shape[DATA], shard_params)), state)


def batch_over_devices(tree):
    """Inside a jitted step: constrain each leaf's leading (example) axis to the "data" axis
    of the mesh in context (jax.set_mesh), so that every device works on its slice only."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA not in mesh.axis_names:
        return tree
    return jax.lax.with_sharding_constraint(tree, P(DATA))


def devices_in_context() -> int:
    """The size of the "data" axis of the mesh in context; 1 outside a mesh."""
    mesh = jax.sharding.get_abstract_mesh()
    return 1 if mesh.empty or DATA not in mesh.axis_names else mesh.shape[DATA]


def is_primary() -> bool:
    """Process 0 alone writes logs, curves and run.json (checkpoints are written by all)."""
    return jax.process_index() == 0


def sync(name: str) -> None:
    """Wait until every process has reached `name` (nothing to wait for with one)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)
