"""Know your data (``imgclf audit``): label issues, duplicates and leaks across splits, class
balance and image properties, read from the decoded-image cache and the embed-once features.

One module per job:

- ``settings``: AuditSettings, the checks and their thresholds (and the ``audit`` extra)
- ``inputs``: AuditData, the rows as every check sees them (names, labels, splits, pixels)
- ``embedding``: the frozen backbone's features, through the models room's embed-once cache
- ``labels``: out-of-sample label issues (K-fold heads on the embeddings, cleanlab)
- ``hashing``: the flip-invariant perceptual hash, the instance signal beside the embeddings
- ``duplicates``: exact and near-duplicates, their groups, leaks and conflicting labels
- ``balance``: counts per class and split, the imbalance ratio
- ``properties``: dark, bright, uniform, blurry, tiny, odd aspect ratio
- ``issues``: the kinds of issue and the Issue; ``result``: the Audit holding every finding
- ``runner``: the checks in order; ``page`` and ``writer``: audit.html, audit.json, issues.csv
- ``controls``: the page's keep / drop / relabel controls, which save decisions.csv (training
  applies it at read time: ``data.formats.decisions``)
- ``clean``: ``--write-clean``, the usable images less every flagged one, as a table
- ``quick``: the cheap leak check every training run makes; ``memo``: results kept beside the
  image cache, so an audit run again reads them
Nothing heavy is imported here: the package's modules are imported where they are used.
"""
