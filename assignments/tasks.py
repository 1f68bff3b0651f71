"""The course's assignments: for each, its title, handout, the functions a student writes and the
paper's place. make.py blanks these functions in a student copy; grade.py runs each assignment's
graded tests (test_graded.py, marked with the assignment's id).

A function is named as "file:qualified name" (the AST path make.py follows), e.g.
"niw.py:NIW.update" is the method update of the class NIW in niw.py.
"""

TASKS = {
    "a1": {
        "title": "the NIW statistics (Thm 3.2, Cor 3.3)",
        "handout": "a1_niw.md",
        "functions": ["niw.py:NIW.update", "niw.py:NIW.mean", "niw.py:NIW.covariance"],
    },
    "a2": {
        "title": "standardization and ZCA whitening (Eq. 9, Remark D.9)",
        "handout": "a2_whitening.md",
        "functions": ["whitening.py:standardize", "whitening.py:eigen", "whitening.py:zca"],
    },
    "a3": {
        "title": "targets and the ridge update in the dual form (Eq. 5-6)",
        "handout": "a3_ridge.md",
        "functions": ["ridge.py:targets", "ridge.py:ridge_dual", "ridge.py:ridge_solve"],
    },
    "a4": {
        "title": "one Lifelong-Normalization editor step (§2.2, §3.3)",
        "handout": "a4_editor.md",
        "functions": [
            "editor.py:Editor._update_stats",
            "editor.py:Editor._normalize",
            "editor.py:Editor._targets",
            "editor.py:Editor._ridge",
        ],
    },
    "a5": {
        "title": "Theorem 3.8's update geometry (Fig. 4, Fig. 12)",
        "handout": "a5_geometry.md",
        "functions": ["ridge.py:frobenius", "lab/outputs.py:geometry_curve"],
    },
}
