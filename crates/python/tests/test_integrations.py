"""toolgym.verl and toolgym.trl: their contracts, without the engines
(scripts/integration/engines_check.py runs them against the real ones)."""

import json
import re
import subprocess
import sys
import warnings

import pytest

import toolgym
import toolgym.trl
import toolgym.verl


def test_integrations_import_nothing_heavy():
    code = (
        "import sys, toolgym, toolgym.verl, toolgym.trl, toolgym.verl_tools\n"
        "heavy = {'torch', 'transformers', 'datasets', 'pyarrow', 'verl', 'trl', 'numpy', 'pandas'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def solutions(task):
    return [task.target() + "<|im_end|>", "<think>no</think>", "\udc80 not text", ""]


def test_verl_compute_score():
    task = toolgym.synthetic_tasks(1)[0]
    truth = task.ground_truth_json()
    got = [toolgym.verl.compute_score("toolgym", s, truth, {"index": 0}) for s in solutions(task)]
    assert got == [1.0, 0.0, 0.0, 0.0]
    # Keyword call, as verl's reward managers make it, and the rule options.
    kw = dict(data_source="x", solution_str=task.target(), ground_truth=truth, extra_info=None)
    assert toolgym.verl.compute_score(**kw, rule="tool-n1") == 1.0
    assert toolgym.verl.compute_score(**kw, rule="fine-grained") == 1.0
    no_think = task.target().split("</think>", 1)[1]
    assert toolgym.verl.compute_score(**{**kw, "solution_str": no_think}) == 0.0
    assert toolgym.verl.compute_score(**{**kw, "solution_str": no_think, "extra_info": {"reward_rule": "binary-no-think"}}) == 1.0
    tasks = toolgym.synthetic_tasks(50)
    sols = [t.target() if i % 3 else "x" for i, t in enumerate(tasks)]
    truths = [t.ground_truth_json() for t in tasks]
    infos = [{"reward_rule": "tool-n1"} if i % 2 else {} for i in range(50)]
    batch = toolgym.verl.compute_score_batch(["toolgym"] * 50, sols, truths, infos)
    assert batch == [toolgym.verl.compute_score("toolgym", s, g, e) for s, g, e in zip(sols, truths, infos)]
    assert sum(batch) == sum(1 for i in range(50) if i % 3)


def test_verl_rows_of_other_data_sources_go_to_verls_default_scorer(monkeypatch):
    """reward_kwargs.sources: rows of other data (math beside tool calls) are scored as verl
    scores them without a custom reward function; engines_check runs verl's own scorer."""
    import types

    seen = []

    def default_compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        seen.append((data_source, solution_str, ground_truth, kwargs))
        if data_source == "math_dapo":  # verl's dict scorers: the reward is the score
            return {"score": -1.0, "acc": False, "pred": "41"}
        if data_source == "unknown":
            raise NotImplementedError(f"Reward function is not implemented for {data_source=}")
        if solution_str == "crash":  # a scorer's error on one row (a parser's, a sandbox call's)
            raise ValueError("cannot parse the answer")
        if solution_str == "no-dependency":
            raise ImportError("No module named 'math_verify'")
        if solution_str == "keywords":
            raise TypeError("compute_score() got an unexpected keyword argument 'strict'")
        return 0.5

    stub = types.ModuleType("verl.utils.reward_score")
    stub.default_compute_score = default_compute_score
    for name, module in (("verl", types.ModuleType("verl")), ("verl.utils", types.ModuleType("verl.utils")),
                         ("verl.utils.reward_score", stub)):
        monkeypatch.setitem(sys.modules, name, module)
    task = toolgym.synthetic_tasks(1)[0]
    truth = task.ground_truth_json()
    score = toolgym.verl.compute_score
    # Toolgym's rows by the rule; others by verl's scorer, with what verl passed (not the rule's options).
    assert score("toolgym", task.target(), truth, None, sources=["toolgym"]) == 1.0
    assert score("openai/gsm8k", "#### 42", "42", {"index": 3}, sources="toolgym", think=True,
                 return_dict=False) == 0.5
    assert seen == [("openai/gsm8k", "#### 42", "42", {"return_dict": False})]
    # Unset: every row is toolgym's (a math row's "42" is no call list: 0, warned).
    with pytest.warns(UserWarning, match="data_source 'openai/gsm8k'"):
        assert score("openai/gsm8k", "#### 42", "42", None) == 0.0
    assert len(seen) == 1
    batch = toolgym.verl.compute_score_batch(
        ["toolgym", "openai/gsm8k", "toolgym"], [task.target(), "#### 7", "x"], [truth, "7", truth],
        sources=["toolgym"])
    assert batch == [1.0, 0.5, 0.0] and seen[-1][:3] == ("openai/gsm8k", "#### 7", "7")
    for bad in ([], [1], 5):
        with pytest.raises(TypeError, match="expected a data source name or a list"):
            score("toolgym", task.target(), truth, None, sources=bad)
    # A dict scorer's row is its score, a float as toolgym's rows are (verl takes a batch's
    # extra keys from its first row).
    assert score("math_dapo", "Answer: 41", "42", None, sources=["toolgym"]) == -1.0
    batch = toolgym.verl.compute_score_batch(["math_dapo", "toolgym"], ["Answer: 41", task.target()], ["42", truth],
                                             sources=["toolgym"])
    assert batch == [-1.0, 1.0] and all(type(x) is float for x in batch)
    # A source verl has no scorer for says that sources left it out (a toolgym source not listed).
    for given in (["toolgym"], "toolgym"):  # one name is a list of one
        with pytest.raises(NotImplementedError, match=r"not among sources=\['toolgym'\]"):
            score("unknown", "x", "y", None, sources=given)
    # verl's scorer failing on one row scores that row 0, warned with the row and the error;
    # the rest of the batch is scored.
    with pytest.warns(UserWarning, match=r"index 9.*data_source 'openai/gsm8k'.*ValueError: cannot parse"):
        assert score("openai/gsm8k", "crash", "1", {"index": 9}, sources=["toolgym"]) == 0.0
    with pytest.warns(UserWarning, match="ValueError: cannot parse"):
        batch = toolgym.verl.compute_score_batch(["openai/gsm8k", "toolgym", "openai/gsm8k"],
                                                 ["crash", task.target(), "#### 1"], ["1", truth, "1"],
                                                 sources=["toolgym"])
    assert batch == [0.0, 1.0, 0.5]
    # What fails every such row (a missing dependency, keywords the scorer does not take) raises.
    with pytest.raises(ImportError, match="math_verify"):
        score("openai/gsm8k", "no-dependency", "1", None, sources=["toolgym"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        score("openai/gsm8k", "keywords", "1", None, sources=["toolgym"])
    # verl's sandbox keywords for code rows reach its scorer without an unknown-keyword warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score("openai/gsm8k", "#### 1", "1", None, sources=["toolgym"], sandbox_fusion_url="http://sandbox")
    assert seen[-1][3] == {"sandbox_fusion_url": "http://sandbox"}


def test_verl_reward_kwargs_reach_the_rule_and_lengths_are_checked():
    task = toolgym.synthetic_tasks(1)[0]
    truth = task.ground_truth_json()
    no_think = task.target().split("</think>", 1)[1]
    kw = dict(data_source="x", solution_str=no_think, ground_truth=truth, extra_info=None)
    # A Rule option in reward_kwargs is the rule's option.
    assert toolgym.verl.compute_score(**kw) == 0.0
    assert toolgym.verl.compute_score(**kw, think=False) == 1.0
    assert toolgym.verl.compute_score_batch(["x"], [no_think], [truth], think=False) == [1.0]
    # A row's own rule does not take them (tool-n1 has no options).
    own = {"reward_rule": "tool-n1"}
    assert toolgym.verl.compute_score(**{**kw, "extra_info": own}, think=False) == 0.0
    assert toolgym.verl.compute_score_batch(["x"], [no_think], [truth], [own], think=False) == [0.0]
    # What verl's reward loop passes is taken quietly; a misspelt option is
    # named, once.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert toolgym.verl.compute_score(**kw, reward_router_address=None) == 0.0
        # DAPO's reward manager always passes strict_box_verify.
        assert toolgym.verl.compute_score(**kw, strict_box_verify=False) == 0.0
    with pytest.warns(UserWarning, match="'thnik'"):
        toolgym.verl.compute_score(**kw, thnik=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        toolgym.verl.compute_score(**kw, thnik=False)
    # One item per response in every sequence.
    good = task.target()
    with pytest.raises(ValueError, match="3 solution_strs but 1 extra_infos"):
        toolgym.verl.compute_score_batch(["d"] * 3, [good] * 3, [truth] * 3, [{}])
    with pytest.raises(ValueError, match="2 ground_truths"):
        toolgym.verl.compute_score_batch(["d"] * 3, [good] * 3, [truth] * 2)


def test_a_bad_row_scores_0_with_a_warning_and_the_rest_are_scored():
    task = toolgym.synthetic_tasks(1)[0]
    good, truth = task.target(), task.ground_truth_json()
    # verl: one row's ground truth is not calls, another's response is not
    # text; the others keep their rewards, the warning names the rows (as
    # rows of the whole batch, also when rows are split by reward_rule).
    infos = [{}, {"reward_rule": "tool-n1"}, {}, {"reward_rule": "tool-n1"}, {}]
    infos[3]["index"] = 33
    with pytest.warns(
        UserWarning,
        match=r"2 of 5 rows could not be scored and score 0: row 1 \[row \(no extra_info index or id\), "
        r"data_source 'd'\]: .*; row 3 \[row with index 33, data_source 'd'\]: ",
    ):
        got = toolgym.verl.compute_score_batch(["d"] * 5, [good, None, good, good, good], [truth, truth, truth, '{"x": 1}', truth], infos)
    assert got == [1.0, 0.0, 1.0, 0.0, 1.0]
    for bad in [None, "", "not json", {"x": 1}, float("nan")]:
        with pytest.warns(UserWarning, match="1 of 1 rows could not be scored"):
            assert toolgym.verl.compute_score("d", good, bad) == 0.0
    # compute_score names the row by its extra_info (index, id) and data
    # source, and the running count makes each warning new (Python's
    # filter shows a repeated text once).
    for i in range(3):
        with pytest.warns(UserWarning, match=rf"row with index {i}, id 'gsm-{i}', data_source 'gsm8k': .* unscored rows in this process so far"):
            assert toolgym.verl.compute_score("gsm8k", "#### 72", "72", {"index": i, "id": f"gsm-{i}"}) == 0.0
    # A misspelt rule in a row's extra_info: that row scores 0, named; the
    # rest are scored. The rule keyword misspelt is the configuration's
    # error, and raises.
    with pytest.warns(UserWarning, match=r"row 1 \[.*\]: extra_infos\[1\]\['reward_rule'\]: .*bnary"):
        assert toolgym.verl.compute_score_batch(["d"] * 2, [good] * 2, [truth] * 2, [{}, {"reward_rule": "bnary"}]) == [1.0, 0.0]
    with pytest.warns(UserWarning, match=r"row with index 17, data_source 'd': extra_info\['reward_rule'\]: .*binray"):
        assert toolgym.verl.compute_score("d", good, truth, {"index": 17, "reward_rule": "binray"}) == 0.0
    for call in (
        lambda: toolgym.verl.compute_score("d", good, truth, {}, rule="binray"),
        lambda: toolgym.verl.compute_score("d", good, truth, {"reward_rule": "binary"}, rule="binray"),
        lambda: toolgym.verl.compute_score_batch(["d"], [good], [truth], rule="binray"),
    ):
        with pytest.raises(ValueError, match="binray"):
            call()
    # The warning points at compute_score's caller (verl's reward loop).
    with pytest.warns(UserWarning) as caught:
        toolgym.verl.compute_score("d", good, None, {"index": 3})
    assert caught[0].filename == __file__
    # Per-row warnings thin out past 20 unscored rows: the 50th, 100th, ...
    from toolgym import _tasks

    _tasks._unscored["rows"] = 0
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for i in range(120):
            toolgym.verl.compute_score("gsm8k", "x", "72", {"index": i})
    counts = [int(re.search(r"\[(\d+) unscored rows", str(w.message)).group(1)) for w in seen]
    assert counts == list(range(1, 21)) + [50, 100], counts
    # TRL: None for the row (TRL leaves it out), a warning naming it.
    f = toolgym.trl.reward_function("binary")
    with pytest.warns(UserWarning, match=r"1 of 3 rows could not be scored .*row 1: "):
        assert f(prompts=[0] * 3, completions=[good] * 3, ground_truth=[truth, '{"x": 1}', truth]) == [1.0, None, 1.0]
    # A completion that cannot be read (TRL's parser, Python's json, lets
    # NaN or a lone surrogate into tool_calls) is the model's: 0, not None
    # (the data's fault), said once; a bad ground truth beside it is still None.
    call = {"name": "x", "arguments": {"v": float("nan")}}
    nan = [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]}]
    surrogate = [{"role": "assistant", "content": "<think>\ud800</think>"}]
    g = toolgym.trl.reward_function("binary")
    with pytest.warns(UserWarning) as caught:
        got = g(completions=[nan, surrogate, nan, good], ground_truth=[truth, truth, '{"x": 1}', truth])
    assert got == [0.0, 0.0, None, 1.0], got
    said = [str(w.message) for w in caught]
    assert any(re.search(r"1 of 4 rows could not be scored .*row 2: ", m) for m in said), said
    assert any(re.search(r"2 of 4 completions could not be read .*score 0 \(said once\)", m) for m in said), said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert g(completions=[nan, good], ground_truth=[truth, truth]) == [0.0, 1.0]
    # When no completion of a call can be read, it is said every time.
    with pytest.warns(UserWarning, match=r"1 of 1 completions could not be read .*check the completions' format"):
        assert g(completions=[nan], ground_truth=[truth]) == [0.0]
    # The library call still raises by default, naming the item.
    with pytest.raises(ValueError, match=r"ground_truths\[1\]"):
        toolgym.Rule("binary").rewards([good] * 2, [truth, "[1]"])
    # With errors="verdict" such an item scores 0, and how many is said.
    with pytest.warns(UserWarning, match=r"rewards: 1 of 2 item\(s\) could not be read and score 0 \(item 1: "):
        assert toolgym.Rule("binary").rewards([good] * 2, [truth, "[1]"], errors="verdict") == [1.0, 0.0]
    with pytest.raises(ValueError, match="errors="):
        toolgym.Rule("binary").rewards([good], [truth], errors="ignore")
    with pytest.raises(ValueError, match="at most 1024"):
        toolgym.Rule("binary").rewards([good], [truth], threads=10**6)
    # A negative count (as in "all cores" elsewhere) is named, not an OverflowError.
    with pytest.raises(ValueError, match=r"threads=-1: must be None or 0 \(all cores\)"):
        toolgym.Rule("binary").score_batch([good], [truth], threads=-1)
    with pytest.raises(ValueError, match=r"threads=1180591620717411303424: must be None or 0"):
        toolgym.Rule("binary").score_batch([good], [truth], threads=2**70)
    for wrong in [1.5, "2", True]:
        with pytest.raises(TypeError, match="threads must be None or an int"):
            toolgym.Rule("binary").rewards([good], [truth], threads=wrong)
    assert toolgym.Rule("binary").rewards([good], [truth], threads=0) == [1.0]
    np = pytest.importorskip("numpy")
    assert toolgym.Rule("binary").rewards([good], [truth], threads=np.int64(2)) == [1.0]
    with pytest.raises(TypeError, match="threads must be None or an int"):
        toolgym.Rule("binary").rewards([good], [truth], threads=np.float64(2))
    # TRL's reward function checks its threads and column when made, not at the first step.
    with pytest.raises(ValueError, match="threads=-5"):
        toolgym.trl.reward_function("binary", threads=-5)
    with pytest.raises(TypeError, match="column=None"):
        toolgym.trl.reward_function("binary", column=None)


def test_the_trl_reward_function_takes_rule_options_and_pickles():
    import pickle

    task = toolgym.synthetic_tasks(1)[0]
    no_think = task.target().split("</think>", 1)[1]
    f = toolgym.trl.reward_function("binary", think=False)
    assert f(completions=[no_think], ground_truth=[task.ground_truth_json()]) == [1.0]
    g = pickle.loads(pickle.dumps(f))
    assert g.__name__ == "toolgym_binary" and g(completions=[no_think], ground_truth=[task.ground_truth_json()]) == [1.0]
    with pytest.raises(TypeError):
        toolgym.trl.reward_function("tool-n1", think=False)
    # TRL's tool loop: the turn that made the calls is scored, not the answer
    # after the tool results (with turn="last" it is, said once).
    truth = task.ground_truth_json()
    calls = [{"type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}} for c in task.ground_truth]
    parsed = {"role": "assistant", "reasoning_content": "r", "content": "", "tool_calls": calls}
    for first in [{"role": "assistant", "content": task.target()}, parsed]:
        loop = [first, {"role": "tool", "content": "42"}, {"role": "assistant", "content": "It is 42."}]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert toolgym.trl.reward_function("binary")(completions=[loop], ground_truth=[truth]) == [1.0]
        last = toolgym.trl.reward_function("binary", turn="last")
        with pytest.warns(UserWarning, match="tool results"):
            assert last(completions=[loop], ground_truth=[truth]) == [0.0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            last(completions=[loop], ground_truth=[truth])
    with pytest.raises(ValueError, match="turn="):
        toolgym.trl.reward_function("binary", turn="every")
    assert pickle.loads(pickle.dumps(last)).turn == "last"


def _episode(owner="Ann Lee", account=7, amount=40.5, answer=True, think=True):
    """A TRL tool-loop completion, in the shape TRL builds it (parse_response:
    reasoning_content, one tool_calls entry per <tool_call> block, arguments
    as dicts; tool results as str(result)): look the account up, withdraw,
    answer."""
    def turn(reasoning, calls=(), content=""):
        m = {"role": "assistant", "content": content}
        if think:
            m["reasoning_content"] = reasoning
        if calls:
            m["tool_calls"] = [{"type": "function", "function": {"name": n, "arguments": a}} for n, a in calls]
        return m
    out = [
        turn("Find the account.", [("find_account", {"owner": owner})]),
        {"role": "tool", "name": "find_account", "content": str({"account": account})},
        turn("Withdraw.", [("withdraw", {"account": account, "amount": amount})]),
        {"role": "tool", "name": "withdraw", "content": "ok"},
    ]
    if answer:
        out.append(turn("Done.", content="The money was withdrawn."))
    return out


EPISODE_TRUTH = json.dumps([
    {"name": "find_account", "arguments": {"owner": "Ann Lee"}},
    {"name": "withdraw", "arguments": {"account": 7, "amount": 40.5}},
])


def test_a_multi_step_episode_is_scored_as_one_with_turn_all():
    import pickle

    f = toolgym.trl.reward_function("binary", turn="all")
    completions = [
        _episode(),
        _episode(answer=False),  # cut off after the last tool round: the calls count
        _episode(amount=40),  # a wrong argument in the second step
        _episode()[:2] + _episode()[4:],  # the withdrawal left out
        _episode(think=False),  # binary wants <think> in every reply
    ]
    truths = [EPISODE_TRUTH] * len(completions)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(completions=completions, ground_truth=truths) == [1.0, 1.0, 0.0, 0.0, 0.0]
        # One reply's calls alone do not make the episode.
        assert toolgym.trl.reward_function("binary")(completions=completions, ground_truth=truths) == [0.0] * 5
    g = toolgym.trl.reward_function("binary-no-think", turn="all")
    assert g(completions=completions[4:], ground_truth=truths[4:]) == [1.0]
    assert pickle.loads(pickle.dumps(f)).turn == "all"
    # The released script's rules score one reply: refused at once, not per row.
    with pytest.raises(ValueError, match="episode"):
        toolgym.trl.reward_function("tool-n1", turn="all")
    with pytest.raises(ValueError, match="episode"):
        toolgym.trl.reward_function("bfcl-ast", turn="all")


def _chatml_response(replies, results):
    """A multi-turn response as verl's tool agent loop lays it out with the
    Qwen template (decoded with its special tokens kept): each reply ends at
    <|im_end|>, the tool results come back in a user turn, the next reply
    follows an assistant header."""
    out = replies[0] + "<|im_end|>"
    for result, reply in zip(results, replies[1:]):
        out += (f"\n<|im_start|>user\n<tool_response>\n{result}\n</tool_response><|im_end|>\n"
                f"<|im_start|>assistant\n{reply}<|im_end|>")
    return out


def _block(name, args):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


def test_verl_scores_a_chatml_multi_turn_response_as_one_episode():
    find = "<think>Find her account.</think>\n" + _block("find_account", {"owner": "Ann Lee"})
    take = "<think>Account 7.</think>\n" + _block("withdraw", {"account": 7, "amount": 40.5})
    done = "<think>Done.</think>\nThe money was withdrawn."
    right = _chatml_response([find, take, done], ['{"account": 7}', '{"ok": true}'])
    short = _chatml_response([find, done], ['{"account": 7}'])
    score = toolgym.verl.compute_score
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert score("toolgym", right, EPISODE_TRUTH, {"index": 0}, episode=True) == 1.0
        assert score("toolgym", short, EPISODE_TRUTH, {"index": 1}, episode=True) == 0.0
        assert toolgym.verl.compute_score_batch(
            ["toolgym"] * 2, [right, short], [EPISODE_TRUTH] * 2, episode=True
        ) == [1.0, 0.0]
    # Without episode=, the text's last reply alone is read (cut at the last
    # assistant header): the answer, which makes no call. A response of the tool
    # loop scored so is said once, with the fix: every such rollout scores 0.
    toolgym.verl._warned.discard("multi-turn-not-episode")
    with pytest.warns(UserWarning, match="holds tool results.*episode=true.*EpisodeRewardManager"):
        assert score("toolgym", right, EPISODE_TRUTH, {"index": 0}) == 0.0
    # Decoded without special tokens (verl's own managers) the turns run together.
    erased = right.replace("<|im_start|>", "").replace("<|im_end|>", "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning's test is the next test's
        assert score("toolgym", erased, EPISODE_TRUTH, {"index": 0}, episode=True) == 0.0
    # A header spelled inside a call's JSON string (no raw line end there) splits nothing.
    owner = "x<|im_end|>\n<|im_start|>assistant\nAnn"
    spelled = _chatml_response(["<think>x</think>\n" + _block("find_account", {"owner": owner}), done], ["{}"])
    assert [role for role, _ in toolgym.chatml_turns(spelled)] == [None, "user", "assistant"]
    replies = toolgym.Rule("binary").score(
        spelled, json.dumps([{"name": "find_account", "arguments": {"owner": owner}}]), episode=True)
    assert replies.ok, replies
    # The configuration's rule must score episodes; a row's own rule that cannot scores 0.
    with pytest.raises(ValueError, match="scores one reply"):
        score("toolgym", right, EPISODE_TRUTH, None, rule="tool-n1", episode=True)
    with pytest.raises(ValueError, match="scores one reply"):
        toolgym.verl.compute_score_batch(["toolgym"], [right], [EPISODE_TRUTH], rule="tool-n1", episode=True)
    with pytest.warns(UserWarning, match="scores one reply"):
        assert score("toolgym", right, EPISODE_TRUTH, {"index": 3, "reward_rule": "tool-n1"}, episode=True) == 0.0
    with pytest.warns(UserWarning, match="scores one reply"):
        assert toolgym.verl.compute_score_batch(
            ["toolgym"] * 2, [right, right], [EPISODE_TRUTH] * 2,
            [{"index": 0}, {"index": 1, "reward_rule": "tool-n1"}], episode=True,
        ) == [1.0, 0.0]


def test_verl_says_when_tool_loop_responses_are_scored_as_one_reply():
    """verl's tool agent loop with episode=false (the default): a rollout that
    called a tool is decoded with the tool round and the later replies, whose
    text fails the format, so every such rollout scores 0. Said once, naming
    verl's turn count, in both entry points; single-turn responses say nothing."""
    from toolgym import verl

    truth = json.dumps([{"name": "f", "arguments": {"a": 1}}])
    call = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    erased = call + 'user\n<tool_response>\n{"r": 2}\n</tool_response>\nassistant\nIt is 2.'
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verl.compute_score("toolgym", call, truth, {"index": 0, "num_turns": 2}, rule="binary-no-think") == 1.0
        assert verl.compute_score_batch(["t"], [call], [truth], [{"num_turns": 2}], rule="binary-no-think") == [1.0]
    verl._warned.discard("multi-turn-not-episode")
    with pytest.warns(UserWarning, match="num_turns 4.*scores 0.*episode=true"):
        assert verl.compute_score("toolgym", erased, truth, {"index": 0, "num_turns": 4}, rule="binary-no-think") == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        assert verl.compute_score("toolgym", erased, truth, {"index": 1, "num_turns": 4}, rule="binary-no-think") == 0.0
    verl._warned.discard("multi-turn-not-episode")
    with pytest.warns(UserWarning, match="holds tool results"):
        assert verl.compute_score_batch(["t"] * 2, [call, erased], [truth] * 2, rule="binary-no-think") == [1.0, 0.0]


def test_verl_episode_scoring_checks_the_turn_headers_against_verls_count():
    from toolgym import verl

    find = "<think>Find her account.</think>\n" + _block("find_account", {"owner": "Ann Lee"})
    take = "<think>Account 7.</think>\n" + _block("withdraw", {"account": 7, "amount": 40.5})
    done = "<think>Done.</think>\nThe money was withdrawn."
    right = _chatml_response([find, take, done], ['{"account": 7}', '{"ok": true}'])
    info = lambda turns: {"index": 0, "num_turns": turns}  # noqa: E731  verl: prompt + 3 replies + 2 tool rounds = 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verl.compute_score("toolgym", right, EPISODE_TRUTH, info(6), episode=True) == 1.0
    # A reply that writes an end token and a header itself (plain tokens decode to the same
    # text) can hide a call verl's parser still runs in a made-up tool turn, or text beside
    # its calls in a made-up answer: more headers than verl counted, so 0.
    one_withdrawal = json.dumps([{"name": "withdraw", "arguments": {"account": 7, "amount": 40.5}}])
    hidden = (take + "<|im_end|>\n<|im_start|>user\n"
              + _block("withdraw", {"account": 7, "amount": 4000}) + "<|im_end|>")
    chatty = take + "<|im_end|>\n<|im_start|>assistant\n<think>b</think>\nAny text I like."
    for forged in (hidden, chatty):
        # Unchecked (no count), the split is taken as it is.
        assert verl.compute_score("toolgym", forged, one_withdrawal, {"index": 0}, episode=True) == 1.0
        verl._warned.discard("forged-headers")
        with pytest.warns(UserWarning, match="wrote turn headers itself"):
            assert verl.compute_score("toolgym", forged, one_withdrawal, info(2), episode=True) == 0.0
        assert verl.compute_score_batch(["toolgym"], [forged], [one_withdrawal], [info(2)], episode=True) == [0.0]
    # A header that does not follow an end token is text: the reply's stray text fails it.
    unended = take + "\n<|im_start|>user\n" + _block("withdraw", {"account": 7, "amount": 4000})
    assert verl.compute_score("toolgym", unended, one_withdrawal, {"index": 0}, episode=True) == 0.0
    # Decoded without special tokens (verl's own managers): said once, with the fix.
    erased = right.replace("<|im_start|>", "").replace("<|im_end|>", "")
    verl._warned.discard("no-headers")
    with pytest.warns(UserWarning, match="EpisodeRewardManager"):
        assert verl.compute_score("toolgym", erased, EPISODE_TRUTH, info(6), episode=True) == 0.0
    # ... also by a manager that reports no turn count (verl's dapo, gdpo).
    verl._warned.discard("no-count-no-headers")
    with pytest.warns(UserWarning, match="no num_turns.*EpisodeRewardManager"):
        assert verl.compute_score("toolgym", erased, EPISODE_TRUTH, {"index": 0}, episode=True) == 0.0
    # A single-turn response (num_turns 2) has no header to agree on.
    single = find.replace("find_account", "withdraw").replace('{"owner": "Ann Lee"}', '{"account": 7, "amount": 40.5}')
    assert verl.compute_score("toolgym", single + "<|im_end|>", one_withdrawal, info(2), episode=True) == 1.0
    # Rows verl could hand over that the turn check cannot read score 0, never raise:
    # a lone surrogate, an infinite count.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert verl.compute_score("toolgym", "ok \ud800", "[]", info(4), episode=True) == 0.0
        assert verl.compute_score_batch(["toolgym"], ["\ud800"], ["[]"], [info(4)], episode=True) == [0.0]
        assert verl.compute_score("toolgym", right, EPISODE_TRUTH, {"num_turns": float("inf")}, episode=True) == 1.0
    # numpy's bools are bools (numpy 2 names the type numpy.bool).
    np = pytest.importorskip("numpy")
    assert verl.compute_score("toolgym", right, EPISODE_TRUTH, info(6), episode=np.True_) == 1.0
    assert verl.compute_score_batch(["toolgym"], [right], [EPISODE_TRUTH], [info(6)], episode=np.False_) == [0.0]
    # An option of the wrong type is named by the Rule, not lost in a cache's hashing.
    with pytest.raises(TypeError, match="abs_tol"):
        verl.compute_score("toolgym", right, EPISODE_TRUTH, info(6), abs_tol=[1])
    # A bool tolerance is refused even after the rule was made with an equal number (True == 1).
    verl.compute_score("toolgym", right, EPISODE_TRUTH, info(6), episode=True, abs_tol=1)
    with pytest.raises(TypeError, match="not a bool"):
        verl.compute_score("toolgym", right, EPISODE_TRUTH, info(6), episode=True, abs_tol=True)
    # episode must be a bool (Hydra's "false" is a truthy string), in both entry points.
    for bad in ("false", 1):
        with pytest.raises(TypeError, match="episode"):
            verl.compute_score("toolgym", right, EPISODE_TRUTH, info(6), episode=bad)
        with pytest.raises(TypeError, match="episode"):
            verl.compute_score_batch(["toolgym"], [right], [EPISODE_TRUTH], episode=bad)


def test_rule_episode_scoring_matches_one_by_one_and_explains_itself():
    rule = toolgym.Rule("binary")
    assert rule.scores_episodes and toolgym.Rule("fine-grained").scores_episodes
    assert not toolgym.Rule("tool-n1").scores_episodes and not toolgym.Rule("bfcl-ast").scores_episodes
    good = rule.score(_episode(), EPISODE_TRUTH, episode=True)
    assert (good.reward, good.reason) == (1.0, "ok")
    bad = rule.score(_episode(amount=40), EPISODE_TRUTH, episode=True)
    assert (bad.reason, bad.detail) == ("wrong_args", "the episode's calls: right tools, wrong arguments")
    no_think = rule.score(_episode(think=False), EPISODE_TRUTH, episode=True)
    assert no_think.reason == "format_error" and no_think.detail.startswith("reply 1 of 3: "), no_think
    # Partial credit over the episode; none for a ChatML text without an assistant turn (no reply).
    fine = toolgym.Rule("fine-grained")
    assert fine.score(_episode(amount=40), EPISODE_TRUTH, episode=True).reward == pytest.approx(0.2)
    no_reply = "<|im_start|>user\nhi<|im_end|>"
    assert toolgym.chatml_turns(no_reply) == [("user", "hi<|im_end|>")]
    assert fine.score(no_reply, EPISODE_TRUTH, episode=True).reward == 0.0
    assert rule.score(no_reply, EPISODE_TRUTH, episode=True) == rule.score("", EPISODE_TRUTH)
    # A string or one message is an episode of one reply: scored as without episode=.
    task = toolgym.synthetic_tasks(1)[0]
    for one in [task.target(), {"role": "assistant", "content": task.target()}, "nope"]:
        assert rule.score(one, task.ground_truth_json(), episode=True) == rule.score(one, task.ground_truth_json())
    # Batch scoring equals one by one, and a list without an assistant message is an input error.
    items = [_episode(), _episode(amount=40), _episode(answer=False), [{"role": "tool", "content": "x"}]]
    batch = rule.score_batch(items, [EPISODE_TRUTH] * 4, errors="verdict", episode=True)
    assert batch[:3] == [rule.score(c, EPISODE_TRUTH, episode=True) for c in items[:3]]
    assert batch[3].reason == "input_error" and "no assistant message" in batch[3].detail
    assert rule.rewards(items[:3], [EPISODE_TRUTH] * 3, episode=True, threads=2) == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="scores one reply"):
        toolgym.Rule("tool-n1").score(_episode(), EPISODE_TRUTH, episode=True)
    with pytest.raises(ValueError, match="scores one reply"):
        toolgym.Rule("tool-n1").score_batch([_episode()], [EPISODE_TRUTH], episode=True)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_batch_scoring_works_in_a_forked_child():
    # A pool made in the parent has no threads in a fork's child: waiting
    # on it would never return (multiprocessing, datasets.map(num_proc=…)).
    import multiprocessing

    task = toolgym.synthetic_tasks(1)[0]
    rule = toolgym.Rule("binary")
    pairs = ([task.target()] * 50, [task.ground_truth_json()] * 50)
    assert sum(rule.rewards(*pairs)) == 50.0
    assert sum(rule.rewards(*pairs, threads=2)) == 50.0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.starmap_async(_score_in_child, [(None,), (2,)]).get(timeout=60)
    assert got == [50.0, 50.0]


def _score_in_child(threads):
    task = toolgym.synthetic_tasks(1)[0]
    pairs = ([task.target()] * 50, [task.ground_truth_json()] * 50)
    return sum(toolgym.Rule("binary").rewards(*pairs, threads=threads))


def test_verl_parquet_has_verls_schema(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    tasks = toolgym.synthetic_tasks(12)
    path = tmp_path / "train.parquet"
    assert toolgym.verl.write_parquet(tasks, str(path)) == 12
    table = pq.read_table(str(path))
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    row = table.to_pylist()[3]
    assert row["data_source"] == "toolgym" and row["ability"] == "tool_call"
    assert row["prompt"] == tasks[3].chat()
    assert row["reward_model"] == {"style": "rule", "ground_truth": tasks[3].ground_truth_json()}
    assert row["extra_info"] == {"index": 3, "id": tasks[3].id, "source": "synthetic", "split": "train"}
    assert toolgym.verl.compute_score(row["data_source"], tasks[3].target(), row["reward_model"]["ground_truth"], row["extra_info"]) == 1.0
    with pytest.raises(TypeError, match=r"tasks\[0\]"):
        toolgym.verl.rows([{"id": 1}])
    # verl 0.9 picks each row's agent loop by its agent_name column (else
    # rollout.agent.default_agent_loop, single_turn_agent: no tools run).
    assert toolgym.verl.write_parquet(tasks[:2], str(path), template=None, agent_name="tool_agent") == 2
    table = pq.read_table(str(path))
    assert table.column("agent_name").to_pylist() == ["tool_agent"] * 2
    assert "agent_name" not in toolgym.verl.rows(tasks[:1])[0]
    with pytest.raises(TypeError, match="agent_name"):
        toolgym.verl.rows(tasks[:1], agent_name=1)


def test_trl_reward_function_contract():
    f = toolgym.trl.reward_function("binary")
    assert f.__name__ == "toolgym_binary"
    tasks = toolgym.synthetic_tasks(4)
    truths = [t.ground_truth_json() for t in tasks]
    prompts = [t.chat() for t in tasks]
    text = [tasks[0].target(), "nope", tasks[2].target(), ""]
    assert f(prompts=prompts, completions=text, ground_truth=truths, id=[t.id for t in tasks]) == [1.0, 0.0, 1.0, 0.0]
    conversational = [[{"role": "assistant", "content": c}] for c in text]
    assert f(prompts=prompts, completions=conversational, ground_truth=truths) == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(KeyError, match="ground_truth"):
        f(prompts=prompts, completions=text, answer=truths)
    g = toolgym.trl.reward_function("tool-n1", column="answer")
    assert g.__name__ == "toolgym_tool_n1"
    assert g(prompts=prompts, completions=text, answer=truths) == [1.0, 0.0, 1.0, 0.0]


def test_rows_can_keep_the_tasks_own_messages_for_engines_that_render_tools():
    tasks = [t for t in toolgym.synthetic_tasks(6)]
    for rows in (toolgym.trl.rows(tasks, template=None), toolgym.verl.rows(tasks, template=None)):
        for row, task in zip(rows, tasks):
            assert row["prompt"] == task.messages
            assert not any(m["role"] == "system" and "<tools>" in m["content"] for m in row["prompt"])
    # A template's system message lists the tools; that one does.
    assert "<tools>" in toolgym.trl.rows(tasks[:1], template="qwen2.5")[0]["prompt"][0]["content"]
    with pytest.raises(ValueError, match="conversational=True"):
        toolgym.trl.rows(tasks, template=None, conversational=False)


def test_trl_dataset(tmp_path):
    pytest.importorskip("datasets")
    tasks = toolgym.synthetic_tasks(6)
    ds = toolgym.trl.to_dataset(tasks)
    assert ds.column_names == ["prompt", "ground_truth", "id", "source"] and len(ds) == 6
    assert ds[2]["prompt"] == tasks[2].chat()
    assert json.loads(ds[2]["ground_truth"]) == tasks[2].ground_truth
    flat = toolgym.trl.to_dataset(tasks, conversational=False)
    assert flat[0]["prompt"] == tasks[0].prompt()


def test_verl_loads_the_reward_file_by_path():
    # verl's custom_reward_function.path loads the file as a standalone
    # module (no parent package), so it must not import relatively.
    import importlib.util

    spec = importlib.util.spec_from_file_location("custom_module_toolgym", toolgym.verl.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    task = toolgym.synthetic_tasks(1)[0]
    assert module.compute_score("toolgym", task.target(), task.ground_truth_json(), {}) == 1.0


def test_template_none_writes_past_calls_as_text_so_arrow_cannot_merge_their_arguments():
    def task(args, gt):
        return toolgym.Task(
            [{"role": "user", "content": "hi"},
             {"role": "assistant", "content": None, "tool_calls": [{"name": "f", "arguments": args}]},
             {"role": "tool", "name": "f", "content": '{"x": 1}'}],
            [{"name": "g", "arguments": gt}],
            [{"name": n, "description": "", "parameters": {"type": "object", "properties": {}}} for n in ("f", "g")],
        )

    tasks = [task({"a": 1}, {}), task({"b": "x"}, {"c": 2})]
    for rows in (toolgym.trl.rows(tasks, template=None), toolgym.verl.rows(tasks, template=None)):
        prompts = [r["prompt"] for r in rows]
        # As the qwen2.5 template (and Qwen2.5's chat template) writes a past call.
        assert [p[1]["content"] for p in prompts] == [t.chat("qwen2.5")[2]["content"] for t in tasks]
        assert prompts[0][1]["content"] == '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
        assert all("tool_calls" not in p[1] for p in prompts)
        assert prompts[0][2] == {"role": "tool", "name": "f", "content": '{"x": 1}'}
    # Text before the calls stays first.
    said = toolgym.Task([{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": "Let me look.", "tool_calls": [{"name": "f", "arguments": {}}]}],
                        [], [])
    assert toolgym.trl.rows([said], template=None)[0]["prompt"][1]["content"] == \
        'Let me look.\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'


def test_episode_scoring_refuses_a_tokenizer_whose_template_writes_no_chatml_headers():
    # EpisodeRewardManager splits responses at ChatML turn headers: a Llama 3, Mistral or
    # Phi-4 template's episodes would all score 0, so the manager refuses such a tokenizer
    # when it is built. The template renders a probe conversation where it can.
    class Tok:
        def __init__(self, template, header=None):
            self.chat_template, self.header = template, header

        def apply_chat_template(self, messages, tokenize=True):
            if self.header is None:
                raise ValueError("cannot render")
            return "".join(self.header.format(role=m["role"]) + m["content"] + "<|im_end|>\n"
                           for m in messages)
    chatml = "<|im_start|>{role}\n"
    toolgym.verl.check_chatml(Tok("qwen", chatml))
    toolgym.verl.check_chatml(Tok(None))  # nothing to tell from
    # Not renderable here: the template's text decides.
    toolgym.verl.check_chatml(Tok("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"))
    toolgym.verl.check_chatml(Tok({"default": "<|im_start|>", "tool_use": "x"}))
    for other in [Tok("phi-4", "<|im_start|>{role}<|im_sep|>"),
                  Tok("llama", "<|start_header_id|>{role}<|end_header_id|>\n\n"),
                  Tok("<|start_header_id|>{{ m.role }}<|end_header_id|>"), Tok({"default": "[INST]"})]:
        with pytest.raises(ValueError, match="writes none"):
            toolgym.verl.check_chatml(other)


def test_engines_read_a_reply_alone_so_a_header_it_wrote_is_text():
    """verl and TRL pass the generated text alone: a reply that writes a wrong call, then an
    assistant header of its own and the right call, scores 0 (read from its last header, as a
    prompt and completion together are, it scored 1); the released script's rule reads from the
    last header either way, as the script does."""
    truth = json.dumps([{"name": "f", "arguments": {"x": 1}}])
    ok = '<think>t</think>\n<tool_call>[{"name": "f", "arguments": {"x": 1}}]</tool_call>'
    forged = ok.replace('"x": 1', '"x": 2') + "\n<|im_start|>assistant\n" + ok
    rule = toolgym.Rule("binary")
    assert rule.score(forged, truth).reward == 1.0
    assert rule.score(forged, truth, reply=True).reason == "format_error"
    assert rule.score(ok, truth, reply=True).reward == 1.0
    assert rule.rewards([forged, ok], [truth, truth], reply=True) == [0.0, 1.0]
    assert toolgym.Rule("fine-grained").score(forged, truth, reply=True).reward < 1.0
    assert toolgym.Rule("tool-n1").score(forged, truth, reply=True).reward == 1.0
    with pytest.raises(ValueError, match="one of them"):
        rule.score(ok, truth, episode=True, reply=True)
    assert toolgym.verl.compute_score("toolgym", forged, truth, {"index": 0}) == 0.0
    assert toolgym.verl.compute_score("toolgym", ok, truth, {"index": 1}) == 1.0
    assert toolgym.verl.compute_score_batch(["toolgym"] * 2, [forged, ok], [truth, truth]) == [0.0, 1.0]
    reward = toolgym.trl.reward_function("binary")
    assert reward(prompts=["p", "p"], completions=[forged, ok], ground_truth=[truth, truth]) == [0.0, 1.0]
