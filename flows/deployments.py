"""Entry points for Prefect deployments: flows whose parameters are a config *file*.

A deployment's parameters must be plain JSON, so scheduled runs name a YAML file (versioned with
the code) instead of carrying a whole config object.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.runtime import configure
from schemas.base import load_config
from schemas.campaign import CampaignConfig

configure()


@flow(name="mmupt-campaign-from-file", flow_run_name="campaign-from-file:{out_dir}")
def campaign_from_file(config_path: str, out_dir: str) -> dict:
    """Run ``flows.campaign.campaign_flow`` with the config at ``config_path``."""
    from flows.campaign import campaign_flow

    return campaign_flow(load_config(CampaignConfig, config_path), Path(out_dir))


@flow(name="mmupt-round-from-file", flow_run_name="next-round:{out_dir}")
def round_from_file(config_path: str, out_dir: str, round_index: int | None = None) -> dict:
    """The next round of the campaign at ``out_dir`` (or round ``round_index``), from its champion.

    Scheduled nightly with no ``round_index``, it continues the campaign one round per run and
    stops (fails with the reason) once the campaign's stop rule holds.
    """
    from flows.campaign import continue_campaign

    record = continue_campaign(load_config(CampaignConfig, config_path), Path(out_dir), round_index)
    return record.model_dump(mode="json")  # the flow run's result: plain JSON for the Prefect UI
