"""`calico-node install` / `uninstall`: pycalico on a host, laid out as Calico is.

What Calico's install-cni and its non-cluster host docs put on a host, with pycalico's
programs: a venv (default /opt/pycalico) holding the pycalico wheel, the compiled CNI shim
as `calico` and `calico-ipam` in /opt/cni/bin, /etc/cni/net.d/10-calico.conflist,
/etc/calico/calicoctl.cfg, /etc/calico/calico.env, the `calico-node.service` unit and, where
NetworkManager is installed, its `calico.conf`. A manifest records what was written, so that
uninstall removes exactly that and then what calico-node left in the kernel.

Pure modules render (settings, conflist, calico_env, calicoctl_cfg, systemd_unit,
network_manager, plan, manifest, kernel_owner); the others act (files, venv, shims,
services, kernel_cleanup, commands) and wheelhouse builds what install installs from.
"""
