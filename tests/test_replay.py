import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from modelbased.core.checkpoint import to_saveable
from modelbased.core.errors import CheckpointError, DataError, UnsupportedSpaceError
from modelbased.data.replay import Batch, ReplayBuffer

OBS_SHAPE, ACTION_SHAPE = (3,), (2,)


def rows(values) -> dict[str, np.ndarray]:
    """Transitions whose every field encodes its value ``v``, so rows can be identified."""
    v = np.asarray(values, dtype=np.float32)
    return {
        "obs": np.repeat(v[:, None], 3, axis=1),
        "action": np.repeat(-v[:, None], 2, axis=1),
        "reward": v,
        "next_obs": np.repeat(v[:, None] + 0.5, 3, axis=1),
        "terminated": v.astype(int) % 2 == 0,
        "truncated": v.astype(int) % 3 == 0,
    }


def row(value) -> dict[str, np.ndarray]:
    return {k: a[0] for k, a in rows([value]).items()}


def make(capacity: int, values=()) -> ReplayBuffer:
    buf = ReplayBuffer(capacity, OBS_SHAPE, ACTION_SHAPE)
    if len(values):
        buf.add_batch(**rows(values))
    return buf


def assert_rows(batch: Batch, values) -> None:
    """``batch`` holds exactly the rows made by ``rows(values)``, in that order, intact."""
    expected = rows(values)
    assert len(batch) == len(values)
    for name in Batch.FIELDS:
        np.testing.assert_array_equal(getattr(batch, name)[:, ...], expected[name], err_msg=name)


def assert_same(a: Batch, b: Batch) -> None:
    for name in Batch.FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_add_overwrites_oldest_and_len_saturates():
    buf = make(4)
    for i in range(7):
        buf.add(**row(i))
        assert len(buf) == min(i + 1, 4)
        assert_rows(buf.all(), list(range(max(0, i - 3), i + 1)))


@pytest.mark.parametrize(
    "chunks",
    [
        [3, 4],  # second batch larger than the remaining space
        [2, 9],  # batch larger than capacity: keep its last 5
        [12],
        [0, 5, 1],
        [4, 1, 1, 3],
    ],
)
def test_add_batch_wraps_like_sequential_adds(chunks):
    capacity = 5
    batched, sequential = make(capacity), make(capacity)
    start = 0
    for n in chunks:
        values = list(range(start, start + n))
        batched.add_batch(**rows(values))
        for v in values:
            sequential.add(**row(v))
        start += n
        assert len(batched) == min(start, capacity)
        assert_rows(batched.all(), list(range(max(0, start - capacity), start)))
    assert_same(batched.all(), sequential.all())
    batched.add(**row(100))  # the ring position is where sequential adds would have left it
    sequential.add(**row(100))
    assert_same(batched.all(), sequential.all())
    assert batched.all().reward[-1] == 100


def test_get_uses_logical_order_and_rejects_out_of_range():
    buf = make(4, range(6))  # stores 2, 3, 4, 5 with the oldest not at physical row 0
    assert_rows(buf.get(np.array([0, 3, 1])), [2, 5, 3])
    assert len(buf.get(np.array([], dtype=np.int64))) == 0
    for bad in ([4], [-1]):
        with pytest.raises(IndexError):
            buf.get(np.array(bad))


def test_sample_returns_only_stored_rows_uniformly():
    buf = make(10, range(25))
    batch = buf.sample(2000, np.random.default_rng(0))
    assert len(batch) == 2000
    assert set(batch.reward.tolist()) == set(range(15, 25))  # every stored row, nothing else
    assert_rows(batch, batch.reward)  # fields of a row stay together
    counts = np.bincount(batch.reward.astype(int) - 15)
    assert counts.min() > 120 and counts.max() < 280
    partial = make(50, range(20)).sample(500, np.random.default_rng(0))
    assert set(partial.reward.tolist()) == set(range(20))
    with pytest.raises(DataError, match="empty"):
        make(3).sample(1, np.random.default_rng(0))


def test_save_load_round_trip_and_continue(tmp_path):
    buf = make(6, range(10))  # wrapped
    path = tmp_path / "sub" / "replay.npz"
    buf.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["replay.npz"]  # no temp left
    loaded = ReplayBuffer.load(path)
    assert (loaded.capacity, loaded.obs_shape, loaded.action_shape) == (6, OBS_SHAPE, ACTION_SHAPE)
    assert_same(loaded.all(), buf.all())
    for b in (buf, loaded):
        b.add(**row(50))
        b.add_batch(**rows([51, 52, 53]))
    assert_same(loaded.all(), buf.all())
    assert_rows(loaded.all(), [8, 9, 50, 51, 52, 53])


def test_save_load_keeps_discrete_dtypes_and_partial_fill(tmp_path):
    buf = ReplayBuffer.for_env(gym.make("FrozenLake-v1"), 10)
    buf.add(3, 1, 0.0, 4, False, False)
    buf.add(4, 2, 1.0, 15, True, False)
    buf.save(tmp_path / "frozen")  # written at exactly the given path
    loaded = ReplayBuffer.load(tmp_path / "frozen")
    assert loaded.obs_dtype == np.int64 and len(loaded) == 2
    assert_same(loaded.all(), buf.all())


def test_load_rejects_corrupt_foreign_and_missing_files(tmp_path):
    make(4, range(4)).save(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    np.savez(tmp_path / "foreign.npz", obs=np.zeros((3, 3)))
    for name in ("truncated.npz", "garbage.npz", "foreign.npz", "missing.npz"):
        with pytest.raises(CheckpointError, match=name):
            ReplayBuffer.load(tmp_path / name)
    with pytest.raises(CheckpointError, match="not an .npz archive"):
        ReplayBuffer.load(tmp_path / "garbage.npz")  # not numpy's misleading "pickled data"


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "replay.npz"
    make(4, range(4)).save(path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        make(4, range(10, 14)).save(path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]
    assert_rows(ReplayBuffer.load(path).all(), range(4))


class DictObsEnv(gym.Env):
    observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))})
    action_space = gym.spaces.Discrete(2)


@pytest.mark.parametrize(
    "env_id,obs_shape,obs_dtype,action_shape,action_dtype",
    [
        ("Pendulum-v1", (3,), np.float32, (1,), np.float32),
        ("CartPole-v1", (4,), np.float32, (), np.int64),
        ("FrozenLake-v1", (), np.int64, (), np.int64),
    ],
)
def test_for_env_spaces(env_id, obs_shape, obs_dtype, action_shape, action_dtype):
    env = gym.make(env_id)
    buf = ReplayBuffer.for_env(env, 50)
    assert (buf.obs_shape, buf.obs_dtype, buf.action_shape, buf.action_dtype) == (
        obs_shape,
        obs_dtype,
        action_shape,
        action_dtype,
    )
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buf.add(obs, action, reward, next_obs, terminated, truncated)
        obs = env.reset()[0] if terminated or truncated else next_obs
    assert len(buf) == 20 and buf.all().obs.shape == (20, *obs_shape)


def test_for_env_rejects_unsupported_space():
    with pytest.raises(UnsupportedSpaceError, match="observation space Dict"):
        ReplayBuffer.for_env(DictObsEnv(), 10)


@pytest.mark.parametrize("field", Batch.FIELDS)
def test_shape_mismatch_names_the_field(field):
    buf = make(10)
    one = row(1)
    one[field] = np.zeros((7,))
    with pytest.raises(DataError, match=rf"{field} has shape \(7,\), expected"):
        buf.add(**one)
    many = rows([1, 2])
    many[field] = np.zeros((2, 7, 7))
    with pytest.raises(DataError, match=rf"{field} has shape \(2, 7, 7\), expected \(N"):
        buf.add_batch(**many)
    many = rows([1, 2])
    many[field] = many[field][:1]
    with pytest.raises(DataError, match="disagree"):
        buf.add_batch(**many)
    assert len(buf) == 0


def test_check_finite_names_the_first_bad_field():
    values = rows(range(10))
    values["reward"][[2, 5, 7]] = np.nan
    values["next_obs"][8, 1] = np.inf
    buf = make(10)
    buf.add_batch(**values)  # NaN is accepted on add
    with pytest.raises(DataError, match="reward contains NaN at 3 of 10 rows"):
        buf.check_finite()
    buf.add_batch(**rows(range(20, 27)))  # overwrites the NaN of rows 2 and 5
    with pytest.raises(DataError, match="reward contains NaN at 1 of 10 rows.*first at row 0"):
        buf.check_finite()
    buf.add_batch(**rows(range(30, 31)))
    with pytest.raises(DataError, match="next_obs contains inf at 1 of 10 rows"):
        buf.check_finite()
    make(10, range(10)).check_finite()
    make(10).check_finite()


def test_state_dict_round_trip_through_a_torch_checkpoint():
    buf = make(7, range(11))
    blob = io.BytesIO()
    torch.save(to_saveable({"replay": buf.state_dict()}), blob)
    blob.seek(0)
    state = torch.load(blob, weights_only=True)["replay"]
    restored = make(7)
    restored.load_state_dict(state)
    assert_same(restored.all(), buf.all())
    for b in (buf, restored):
        b.add_batch(**rows([90, 91, 92]))
    assert_same(restored.all(), buf.all())
    with pytest.raises(DataError, match="obs_shape"):
        ReplayBuffer(7, (4,), ACTION_SHAPE).load_state_dict(buf.state_dict())


@pytest.mark.parametrize("capacity", [0, -3, 2.5])
def test_capacity_must_be_a_positive_int(capacity):
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity, OBS_SHAPE, ACTION_SHAPE)


def test_batch_to_torch_dtypes():
    buf = ReplayBuffer.for_env(gym.make("CartPole-v1"), 10)
    buf.add(np.ones(4, np.float32), 1, 1.0, np.ones(4, np.float32), True, False)
    tensors = buf.all().to_torch()
    assert set(tensors) == set(Batch.FIELDS)
    assert tensors["obs"].shape == (1, 4) and tensors["action"].shape == (1,)
    for name in ("obs", "action", "reward", "next_obs"):
        assert tensors[name].dtype == torch.float32
    assert tensors["terminated"].dtype == torch.bool and tensors["terminated"].item()
    assert tensors["truncated"].dtype == torch.bool and not tensors["truncated"].item()
