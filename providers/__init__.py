"""Provider adapters: the common OpenAI wire language and one module per upstream wire format.

Nothing here imports `gateway`, `policies` or `local_runtime`.
"""

from providers.native import overlay

overlay(__name__, __path__)
