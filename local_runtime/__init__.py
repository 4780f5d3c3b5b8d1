"""Local model serving (ONNX Runtime in-process, supervised vLLM servers).

Not built yet: this package is the home of issue 6. Nothing here is imported by the gateway.
"""
