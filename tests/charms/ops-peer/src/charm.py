#!/usr/bin/env python3
"""The benchmark's peer: the least an ops charm does in update-status and config-changed."""

import ops


class OpsPeer(ops.CharmBase):
    """Reads its config, asks whether it leads, reads its peers' data, sets its status."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for event in (self.on.install, self.on.config_changed, self.on.update_status,
                      self.on.cluster_relation_changed, self.on.leader_elected):
            framework.observe(event, self._reconcile)

    def _reconcile(self, _event: ops.EventBase):
        port = int(self.config["port"])
        peers = self.model.get_relation("cluster")
        own = dict(peers.data[self.unit]) if peers else {}
        if peers and self.unit.is_leader():
            ready = [u for u in peers.units if peers.data[u].get("port")]
        else:
            ready = []
        if peers and own.get("port") != str(port):
            peers.data[self.unit]["port"] = str(port)
        self.unit.status = ops.ActiveStatus(f"port {port}, {len(ready)} peers ready")


if __name__ == "__main__":
    ops.main(OpsPeer)
