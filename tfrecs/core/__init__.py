"""What models need from below them: replica rules, precision, task helpers, registration.

``tfrecs.core`` sits under ``tfrecs.layers`` and ``tfrecs.models`` (and is re-exported by
``tfrecs.training`` where users expect it), so importing a model never loads ``fit``,
callbacks or the input pipelines. The layer order is enforced by the import-linter
contract in ``pyproject.toml``.
"""
