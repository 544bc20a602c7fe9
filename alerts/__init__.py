"""klankkast-alerts: live nuisance alerts from the nodes' 1-s frames.

A program of its own: :mod:`klankkast.alerts.engine` is the pure decision core
(the analysis' episode rules through its streaming detector, confirmation, updates,
hysteresis, quiet hours), :mod:`klankkast.alerts.service` the wiring (config, MQTT,
webhooks, InfluxDB writer, CLI). It imports the analysis (rules, detector) and the
storage module; nothing imports it.
"""
