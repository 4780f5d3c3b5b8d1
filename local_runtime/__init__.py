"""Local model serving: ONNX Runtime models in-process with dynamic batching, and supervised vLLM servers.

    repository.py        the model repository on disk and the model.yaml schema
    execution.py         execution providers (TensorRT / CUDA / CPU): choice, fallback, sessions
    batcher.py           the dynamic batcher (asyncio queue → worker threads)
    text.py              tokenizer, padding with attention masks, pooling
    tensors.py           model signatures in Open Inference Protocol datatypes
    runners.py           what a worker thread does with one batch, per model kind
    loading.py           load + warm up one version
    model_manager.py     versions, atomic hot swap, unload, file watcher
    oip.py               Open Inference Protocol v2: validation, responses, metadata
    inference_routes.py  the /v2 and admin endpoints as plain (status, body) functions
    onnx_provider.py     `kind: onnx` — the provider for /v1/embeddings
    importers.py, bert_onnx.py, cli.py   `switchyard models import|list`, built offline
    vllm_supervisor.py   `local_runtime.vllm` servers as supervised child processes

Imports only `providers` from this project; nothing here runs at import time.
"""
