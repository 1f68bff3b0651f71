"""The laboratory around the method: settings, phases, models, caches, replicas, results helpers
(lab/README.md names each file's job). It imports the core; the core never imports it."""
