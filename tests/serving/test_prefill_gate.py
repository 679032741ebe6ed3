"""PrefillGate keeps a lone prompt-logprobs request apart from chat requests (serving.prefill_gate), with a
scripted server gauge; the real vLLM case is tests/serving/test_prefill_gate_vllm.py."""

from __future__ import annotations

import threading
import time

import pytest

from serving.prefill_gate import PrefillGate, ServerBusy, vllm_requests_in_server

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny"} 1.0
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 7.0
"""


def test_the_gauges_count_running_and_waiting_requests() -> None:
    assert vllm_requests_in_server(METRICS) == 3
    assert vllm_requests_in_server(METRICS.replace("2.0", "0.0").replace(" 1.0", " 0.0")) == 0
    assert vllm_requests_in_server("# a server without vLLM's gauges\nhttp_requests_total 5\n") is None


def test_a_lone_request_waits_until_the_server_runs_nothing() -> None:
    busy = [2, 1, 0]
    gate = PrefillGate(lambda: busy.pop(0) if len(busy) > 1 else busy[0])
    with gate.alone():
        assert busy == [0], "sent before the server was idle"


def test_a_chat_request_waits_while_a_lone_request_is_out() -> None:
    gate, order = PrefillGate(lambda: 0), []
    with gate.alone():
        chat = threading.Thread(target=lambda: _chat(gate, order))
        chat.start()
        time.sleep(0.2)
        order.append("lone request answered")
    chat.join(timeout=5)
    assert order == ["lone request answered", "chat sent"]


def test_a_lone_request_waits_for_a_chat_request_on_its_way() -> None:
    gate, order = PrefillGate(lambda: 0), []
    sending, release = threading.Event(), threading.Event()

    def slow_chat() -> None:
        with gate.chat_request():
            sending.set()
            release.wait(5)
            order.append("chat request reached the server")

    chat = threading.Thread(target=slow_chat)
    chat.start()
    sending.wait(5)
    threading.Timer(0.2, release.set).start()
    with gate.alone():
        order.append("lone request sent")
    chat.join(timeout=5)
    assert order == ["chat request reached the server", "lone request sent"]


def test_after_its_patience_a_lone_request_holds_new_chat_back_until_the_server_is_idle() -> None:
    running = [1]
    gate, order = PrefillGate(lambda: running[0], patience_s=0.1), []

    def reply_ends() -> None:  # the running reply finishes; a new chat request clicked meanwhile waits
        time.sleep(0.3)
        late_chat = threading.Thread(target=lambda: _chat(gate, order))
        late_chat.start()
        time.sleep(0.2)
        running[0] = 0
        order.append("running reply ended")
        late_chat.join(timeout=5)

    ending = threading.Thread(target=reply_ends)
    ending.start()
    with gate.alone():
        order.append("lone request sent")
        time.sleep(0.1)
    ending.join(timeout=5)
    assert order == ["running reply ended", "lone request sent", "chat sent"]


def test_a_request_that_slipped_in_before_the_gate_shut_is_waited_for() -> None:
    readings = [0, 1, 1, 0, 0]  # idle, then another client's request shows up at the second look
    seen: list[int] = []

    def gauge() -> int:
        seen.append(readings.pop(0) if len(readings) > 1 else readings[0])
        return seen[-1]

    with PrefillGate(gauge).alone():
        assert seen[:4] == [0, 1, 1, 0] and seen[-1] == 0


def test_a_server_that_stays_busy_is_reported() -> None:
    gate = PrefillGate(lambda: 1, patience_s=0.1, idle_timeout_s=0.2)
    with pytest.raises(ServerBusy, match="stayed busy"), gate.alone():
        pass
    with gate.chat_request():  # the gate is open again
        pass


def test_without_gauges_only_this_process_is_kept_apart() -> None:
    with PrefillGate(lambda: None).alone():
        pass


def _chat(gate: PrefillGate, order: list[str]) -> None:
    with gate.chat_request():
        order.append("chat sent")
