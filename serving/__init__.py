"""Serving: the engine protocol, its engines (vLLM over OpenAI, in-process transformers + peft), the vLLM process.

protocol.py       the contract the app codes against (typed deltas, SamplingParams, Engine, AdapterStatus, errors)
openai_engine.py  OpenAIEngine: vLLM or any OpenAI-compatible API (reasoning split, adapters by name)
local_engine.py   LocalEngine: transformers + peft, base + adapter rows in ONE batched generate
adapters.py       AdapterRegistry / validate_adapter: vLLM's rules, checked before any load
adapter_service.py  AdapterService: adapters by name from one folder, one lock per name, fresh name on reload
adapter_routes.py   /v1/adapters inside the vLLM process (AdapterService over vLLM's own load/unload routes)
vllm_server.py    VLLMServer: start vLLM (LoRA on, 127.0.0.1, API key), wait /health, stop the tree
factory.py        create_engine("openai" | "local", ...) with lazy imports

python -m serving --model Models/Qwen3-4B-Thinking-2507 --adapters_dir Models/adapters --port 8000
python -m serving.chat --engine local --model .cache/tiny-qwen3 --adapter huanhuan=Models/adapters/huanhuan
"""
