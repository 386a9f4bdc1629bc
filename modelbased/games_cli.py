"""The ``arena`` and ``play`` verbs: trained game agents against built-in players or a person.

A player spec is a run directory (an ``alphazero``, ``muzero`` or ``mcts`` run on a game) or a
built-in player: ``random``, ``minimax`` (tic-tac-toe), ``alphabeta:DEPTH`` (connect four),
``mcts:SIMULATIONS``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from modelbased.agents.alphazero import GameAgent
from modelbased.agents.arena import builtin_player, play_games
from modelbased.agents.muzero import MuZero
from modelbased.core.env_utils import make_env
from modelbased.core.errors import ModelbasedError, UnsupportedSpaceError
from modelbased.envs.games import Game, GameEnv, Player

DEFAULT_GAME_ENV = "modelbased/TicTacToe-v0"


def game_of(env_id: str) -> Game:
    """The rules of a two-player game env id; UnsupportedSpaceError for other envs."""
    env = make_env(env_id)
    if not isinstance(env.unwrapped, GameEnv):
        raise UnsupportedSpaceError(
            f"{env_id} is not a two-player game; use modelbased/TicTacToe-v0 or "
            "modelbased/ConnectFour-v0"
        )
    return env.unwrapped.game


def load_game_agent(
    run_dir: str, simulations: int | None = None, device: str = "auto"
) -> GameAgent | MuZero:
    """The game agent saved in ``run_dir``, on ``device``; ``simulations`` replaces the search
    budget it plays with (the agent's ``play_budget_key``: AlphaZero's and MuZero's
    ``eval_simulations``, pure MCTS's ``search.num_simulations``)."""
    from modelbased.runs import load_run

    agent = load_run(run_dir, device)
    if not isinstance(agent, GameAgent | MuZero) or not isinstance(agent.env.unwrapped, GameEnv):
        raise UnsupportedSpaceError(
            f"{run_dir} holds a {agent.algo} agent, which plays no board game"
        )
    if simulations is not None:
        agent.config = agent.config.replace(**{agent.play_budget_key: simulations})
    return agent


def resolve_players(
    specs: list[str],
    env_id: str | None,
    seed: int,
    simulations: int | None = None,
    device: str = "auto",
) -> tuple[list[Player], str]:
    """Players for ``specs`` and the env they play on (``env_id``, else the run dirs' own);
    ``simulations``, if given, is the search budget per move of the run-dir players."""
    agents = {s: load_game_agent(s, simulations, device) for s in specs if Path(s).is_dir()}
    run_envs = {a.env_id for a in agents.values()}
    if env_id is None:
        if len(run_envs) > 1:
            raise ModelbasedError(f"the runs play different games ({', '.join(sorted(run_envs))})")
        env_id = run_envs.pop() if run_envs else DEFAULT_GAME_ENV
    for spec, agent in agents.items():
        if agent.env_id != env_id:
            raise ModelbasedError(f"{spec} was trained on {agent.env_id}, not {env_id}")
    game = game_of(env_id)
    players = []
    for i, spec in enumerate(specs):
        player = agents[spec].player() if spec in agents else builtin_player(spec, game, seed + i)
        player.name = spec
        players.append(player)
    return players, env_id


def arena(
    a: str,
    b: str,
    games: int,
    env_id: str | None,
    seed: int,
    simulations: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """A against B for ``games`` games, each first in half of them; A's results."""
    (pa, pb), env_id = resolve_players([a, b], env_id, seed, simulations, device)
    table = play_games(game_of(env_id), pa, pb, games, np.random.default_rng(seed))
    return {
        "a": a,
        "b": b,
        "env": env_id,
        **table["total"],
        "first": table["first"],
        "second": table["second"],
    }


def format_arena(out: dict[str, Any]) -> str:
    """The arena result as a win/draw/loss table for both colours."""
    lines = [
        f"{out['a']} (A) vs {out['b']} (B), {out['games']} games on {out['env']}",
        f"{'':<12}{'games':>7}{'wins':>7}{'draws':>7}{'losses':>8}",
    ]
    for label, row in (("A first", out["first"]), ("A second", out["second"]), ("total", out)):
        lines.append(
            f"{label:<12}{row['games']:>7}{row['wins']:>7}{row['draws']:>7}{row['losses']:>8}"
        )
    return "\n".join(lines)


def play(
    run_dir: str, human_first: bool, seed: int, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout
) -> int:
    """One game in the terminal between a person and the agent of ``run_dir``."""
    agent = load_game_agent(run_dir)
    game, player = game_of(agent.env_id), agent.player()
    rng = np.random.default_rng(seed)
    board = game.initial(1)
    you, move = ("X" if human_first else "O"), 0
    print(f"You are {you} against {agent.algo} ({run_dir}); X moves first. 'q' quits.", file=out)
    while True:
        print("\n" + game.render(board[0]), file=out)
        human = (move % 2 == 0) == human_first
        if human:
            print(f"your move ({you}): ", end="", file=out, flush=True)
            try:
                line = stdin.readline()
            except KeyboardInterrupt:
                line = ""
            if not line:
                print("\nbye", file=out)
                return 0
            if line.strip().lower() in ("q", "quit", "exit"):
                print("bye", file=out)
                return 0
            try:
                action = game.parse_action(line, board[0])
            except ValueError as exc:
                print(f"illegal: {exc}", file=out)
                continue
        else:
            action = int(player(board, rng)[0])
            print(f"{agent.algo} plays {game.action_label(action)}", file=out)
        board, reward, done = game.step(board, np.array([action]))
        move += 1
        if done[0]:
            print("\n" + game.render(board[0]), file=out)
            verdict = "draw" if reward[0] == 0 else ("you win" if human else f"{agent.algo} wins")
            print(f"game over: {verdict}", file=out)
            return 0
