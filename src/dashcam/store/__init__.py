"""Stores: the :class:`~dashcam.store.base.Store` port and its adapters (DuckDB embedded default)."""
