"""JUICE human evaluation (Emu Video, section 4): pairwise quality and faithfulness votes with reasons.

Modules: `protocol` (questions, reasons, agreement levels), `prompts` (prompt files), `process` (bringing a
pair of videos to one spec), `store` (the study's SQLite database), `study` (creating a study), `server` (the
web app), `stats` and `results` (win rates, agreement, Fleiss' kappa, exports and plot).
"""
