"""A small own-data table with planted signal, as a user's CSV would hold it."""

import numpy as np
import pandas as pd

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance")
# tfrecs.data.from_files keywords for the table of ``own_frame``
COLUMNS = dict(
    user="user",
    item="movie",
    rating="stars",
    timestamp="ts",
    user_features=["age", "country"],
    item_features=["genres", "title"],
    list_features=["genres"],
)
# the same as tfrecs command-line options
CLI_OPTIONS = [
    "--user-col", "user", "--item-col", "movie", "--rating-col", "stars", "--timestamp-col", "ts",
    "--user-features", "age,country", "--item-features", "genres,title", "--list-features", "genres",
]  # fmt: skip


def own_frame(num_users: int = 100, num_items: int = 60, per_user: int = 20, seed: int = 0) -> pd.DataFrame:
    """~2000 rows: users like the items of their favourite genre (so labels carry signal)."""
    rng = np.random.default_rng(seed)
    item_genres = [
        "|".join(sorted(set(rng.choice(GENRES, size=rng.integers(1, 3), replace=False)))) for _ in range(num_items)
    ]
    rows = []
    time = 1_000
    for u in range(num_users):
        favourite = GENRES[u % len(GENRES)]
        age, country = 18 + u % 50, ("fr", "de", "us")[u % 3]
        for i in rng.choice(num_items, size=per_user, replace=False):
            likes = favourite in item_genres[i]
            stars = int(np.clip(rng.normal(4.3 if likes else 2.5, 0.8), 1, 5))
            time += int(rng.integers(1, 100))
            rows.append((f"u{u}", f"m{i:03d}", stars, time, age, country, item_genres[i], f"Movie {i}"))
    return pd.DataFrame(rows, columns=["user", "movie", "stars", "ts", "age", "country", "genres", "title"])
