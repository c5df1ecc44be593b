"""Hub options have one source of defaults: the settings table in service/settings.py."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from hub import typedefs as T
from service.settings import BY_NAME, Config


def test_every_option_is_a_setting_and_defaults_to_its_default(tmp_path: Path) -> None:
    table = Config({}, environ={}, dotenv=tmp_path / "none.env")
    from_table = T.HubOptions.from_config(table)
    assert T.HubOptions() == from_table
    for f in fields(T.HubOptions):
        assert f"WB_HUB_{f.name.upper()}" in BY_NAME, f.name
    # the value that used to differ: 0 in HubOptions, 2 in the setting
    assert T.HubOptions().verify_processes == int(BY_NAME["WB_HUB_VERIFY_PROCESSES"].default)


def test_create_app_without_options_uses_the_configuration(tmp_path: Path) -> None:
    from hub.app import create_app

    config = Config({"WB_HUB_PAGE_LIMIT": "7", "WB_HUB_VERIFY_PROCESSES": "0",
                     "WB_HUB_DATABASE_URL": "postgresql://unused/x"},
                    environ={}, dotenv=tmp_path / "none.env")
    app = create_app(config)
    assert app[T.options_key].page_limit == 7
    assert app[T.options_key].verify_processes == 0
