"""Assets: the data a flow produces, with their materializations and lineage.

As ``prefect.assets``::

    from fluvial.assets import Asset, AssetProperties, materialize, add_asset_metadata

    orders = Asset(key="s3://lake/orders.parquet",
                   properties=AssetProperties(name="Orders", owners=["data-team"]))

    @materialize(orders)
    def build_orders(raw): ...

Every run of a materializing task records one materialization per asset (its
run, status and the metadata added during the run). Upstream assets — those
materialized by the tasks whose futures or results it consumed, and those named
in ``asset_deps=`` — become lineage edges. ``fluvial asset ls | inspect KEY``
shows them.
"""

from fluvial.assets._asset import Asset, AssetProperties
from fluvial.assets._materialize import MaterializingTask, add_asset_metadata, materialize

__all__ = ["Asset", "AssetProperties", "MaterializingTask", "add_asset_metadata", "materialize"]
