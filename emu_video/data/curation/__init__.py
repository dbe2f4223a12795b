"""Curating a video set as the paper selects its high-quality fine-tuning clips (`emu-video curate`).

* :mod:`.probe`      -- a clip's size, rate, length and codec
* :mod:`.scan`       -- one decoding pass: motion values, first frame, thumbnails
* :mod:`.motion`     -- the motion score (H.264 motion vectors, or frame differences) and its window minimum
* :mod:`.scenes`     -- scene cuts (PySceneDetect over PyAV)
* :mod:`.split`      -- writing the scenes of a video as separate files
* :mod:`.duplicates` -- perceptual hashes and near-duplicate groups
* :mod:`.aesthetic`  -- the LAION aesthetic predictor (MLP on CLIP ViT-L/14 embeddings)
* :mod:`.quality`    -- CLIP and aesthetic scores of first frames
* :mod:`.filters`    -- thresholds and drop reasons
* :mod:`.measure`    -- measuring one manifest row (worker side)
* :mod:`.journal`    -- the resumable record of measured rows
* :mod:`.report`     -- report.json and histograms
* :mod:`.pipeline`   -- the whole run
"""
