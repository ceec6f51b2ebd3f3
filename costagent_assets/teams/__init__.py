"""The teams registry: which team owns which account, and where its cost report goes.

``model`` holds a team and the rules its fields obey, ``importing`` reads CSV and JSON files with the
line of every problem, ``registry`` keeps the stored registry and changes it all or nothing.
"""
