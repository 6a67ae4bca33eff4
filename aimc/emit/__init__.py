"""Emitting: a plan's artifacts as text. The Emitter registry (:mod:`aimc.emit.emitters`:
local and k8s), the local artifacts (:mod:`aimc.emit.render`, through the templates),
Kubernetes manifests (:mod:`aimc.emit.k8s` and its parts). Pure.
"""
