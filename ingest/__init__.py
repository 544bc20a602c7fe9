"""klankkast.ingest: MQTT subscriber -> validation -> InfluxDB writer, and live alerts."""
