# Problems 1-75 of the package's own problem set (see basic_problems.py).
P = []
def p(name, desc, sol, tests):
    P.append((name, desc, sol, tests))

p("add_two", "Write a function add_two(a, b) that returns the sum of two integers.",
  "def add_two(a, b):\n    return a + b",
  ["add_two(2, 3) == 5", "add_two(-1, 1) == 0", "add_two(0, 0) == 0", "add_two(100, 250) == 350"])
p("square", "Write a function square(n) that returns n multiplied by itself.",
  "def square(n):\n    return n * n",
  ["square(3) == 9", "square(-4) == 16", "square(0) == 0", "square(12) == 144"])
p("is_even", "Write a function is_even(n) that returns True if the integer n is even and False otherwise.",
  "def is_even(n):\n    return n % 2 == 0",
  ["is_even(4) is True", "is_even(7) is False", "is_even(0) is True", "is_even(-2) is True"])
p("max_of_three", "Write a function max_of_three(a, b, c) that returns the largest of three numbers.",
  "def max_of_three(a, b, c):\n    return max(a, b, c)",
  ["max_of_three(1, 2, 3) == 3", "max_of_three(9, 2, 3) == 9", "max_of_three(-1, -5, -3) == -1", "max_of_three(4, 4, 2) == 4"])
p("list_sum", "Write a function list_sum(nums) that returns the sum of a list of numbers (0 for an empty list).",
  "def list_sum(nums):\n    return sum(nums)",
  ["list_sum([1, 2, 3]) == 6", "list_sum([]) == 0", "list_sum([-5, 5, 10]) == 10"])
p("reverse_string", "Write a function reverse_string(s) that returns the string s reversed.",
  "def reverse_string(s):\n    return s[::-1]",
  ["reverse_string('abc') == 'cba'", "reverse_string('') == ''", "reverse_string('racecar') == 'racecar'", "reverse_string('Hello') == 'olleH'"])
p("count_vowels", "Write a function count_vowels(s) that returns how many vowels (a, e, i, o, u, lower or upper case) the string s contains.",
  "def count_vowels(s):\n    return sum(1 for c in s.lower() if c in 'aeiou')",
  ["count_vowels('hello') == 2", "count_vowels('xyz') == 0", "count_vowels('AEIOU') == 5", "count_vowels('Programming') == 3"])
p("factorial", "Write a function factorial(n) that returns n! for a non-negative integer n (0! is 1).",
  "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result",
  ["factorial(0) == 1", "factorial(1) == 1", "factorial(5) == 120", "factorial(10) == 3628800"])
p("is_palindrome", "Write a function is_palindrome(s) that returns True if the string s reads the same forwards and backwards.",
  "def is_palindrome(s):\n    return s == s[::-1]",
  ["is_palindrome('level') is True", "is_palindrome('hello') is False", "is_palindrome('') is True", "is_palindrome('abba') is True"])
p("fibonacci", "Write a function fibonacci(n) that returns the n-th Fibonacci number, with fibonacci(0) == 0 and fibonacci(1) == 1.",
  "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
  ["fibonacci(0) == 0", "fibonacci(1) == 1", "fibonacci(2) == 1", "fibonacci(10) == 55", "fibonacci(20) == 6765"])
p("min_of_list", "Write a function min_of_list(nums) that returns the smallest number in a non-empty list.",
  "def min_of_list(nums):\n    return min(nums)",
  ["min_of_list([3, 1, 2]) == 1", "min_of_list([5]) == 5", "min_of_list([-2, -8, 0]) == -8"])
p("count_occurrences", "Write a function count_occurrences(items, x) that returns how many times x appears in the list items.",
  "def count_occurrences(items, x):\n    return items.count(x)",
  ["count_occurrences([1, 2, 1, 3], 1) == 2", "count_occurrences([], 5) == 0", "count_occurrences(['a', 'b', 'a'], 'a') == 2"])
p("celsius_to_fahrenheit", "Write a function celsius_to_fahrenheit(c) that converts a temperature from Celsius to Fahrenheit (F = C * 9 / 5 + 32).",
  "def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32",
  ["celsius_to_fahrenheit(0) == 32", "celsius_to_fahrenheit(100) == 212", "celsius_to_fahrenheit(-40) == -40"])
p("absolute_value", "Write a function absolute_value(n) that returns the absolute value of n without using abs().",
  "def absolute_value(n):\n    return -n if n < 0 else n",
  ["absolute_value(-3) == 3", "absolute_value(4) == 4", "absolute_value(0) == 0"])
p("string_length", "Write a function string_length(s) that returns the number of characters in the string s.",
  "def string_length(s):\n    return len(s)",
  ["string_length('abc') == 3", "string_length('') == 0", "string_length('hello world') == 11"])
p("double_list", "Write a function double_list(nums) that returns a new list with every number of nums multiplied by 2.",
  "def double_list(nums):\n    return [2 * x for x in nums]",
  ["double_list([1, 2, 3]) == [2, 4, 6]", "double_list([]) == []", "double_list([-1, 0]) == [-2, 0]"])
p("filter_even", "Write a function filter_even(nums) that returns the even numbers of the list nums, in order.",
  "def filter_even(nums):\n    return [x for x in nums if x % 2 == 0]",
  ["filter_even([1, 2, 3, 4]) == [2, 4]", "filter_even([1, 3]) == []", "filter_even([0, -2, 5]) == [0, -2]"])
p("first_element", "Write a function first_element(items) that returns the first element of a list, or None when the list is empty.",
  "def first_element(items):\n    return items[0] if items else None",
  ["first_element([7, 8]) == 7", "first_element([]) is None", "first_element(['x']) == 'x'"])
p("last_element", "Write a function last_element(items) that returns the last element of a list, or None when the list is empty.",
  "def last_element(items):\n    return items[-1] if items else None",
  ["last_element([7, 8]) == 8", "last_element([]) is None", "last_element(['x', 'y', 'z']) == 'z'"])
p("average", "Write a function average(nums) that returns the arithmetic mean of a non-empty list of numbers.",
  "def average(nums):\n    return sum(nums) / len(nums)",
  ["average([1, 2, 3]) == 2", "average([5]) == 5", "average([1, 2]) == 1.5"])
p("to_upper", "Write a function to_upper(s) that returns the string s in upper case.",
  "def to_upper(s):\n    return s.upper()",
  ["to_upper('abc') == 'ABC'", "to_upper('Hello World') == 'HELLO WORLD'", "to_upper('') == ''"])
p("count_words", "Write a function count_words(s) that returns the number of words in s, where words are separated by whitespace.",
  "def count_words(s):\n    return len(s.split())",
  ["count_words('hello world') == 2", "count_words('') == 0", "count_words('  one   two three ') == 3"])
p("is_prime", "Write a function is_prime(n) that returns True if n is a prime number and False otherwise.",
  "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True",
  ["is_prime(2) is True", "is_prime(15) is False", "is_prime(17) is True", "is_prime(1) is False", "is_prime(97) is True"])
p("sum_of_digits", "Write a function sum_of_digits(n) that returns the sum of the decimal digits of a non-negative integer n.",
  "def sum_of_digits(n):\n    return sum(int(d) for d in str(n))",
  ["sum_of_digits(123) == 6", "sum_of_digits(0) == 0", "sum_of_digits(9999) == 36"])
p("repeat_string", "Write a function repeat_string(s, n) that returns the string s repeated n times.",
  "def repeat_string(s, n):\n    return s * n",
  ["repeat_string('ab', 3) == 'ababab'", "repeat_string('x', 0) == ''", "repeat_string('', 5) == ''"])
p("unique_elements", "Write a function unique_elements(items) that returns the distinct elements of a list in the order they first appear.",
  "def unique_elements(items):\n    seen = set()\n    out = []\n    for x in items:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out",
  ["unique_elements([1, 2, 1, 3, 2]) == [1, 2, 3]", "unique_elements([]) == []", "unique_elements(['a', 'a']) == ['a']"])
p("sort_ascending", "Write a function sort_ascending(nums) that returns a new list with the numbers of nums sorted from smallest to largest.",
  "def sort_ascending(nums):\n    return sorted(nums)",
  ["sort_ascending([3, 1, 2]) == [1, 2, 3]", "sort_ascending([]) == []", "sort_ascending([5, -1, 5]) == [-1, 5, 5]"])
p("sort_descending", "Write a function sort_descending(nums) that returns a new list with the numbers of nums sorted from largest to smallest.",
  "def sort_descending(nums):\n    return sorted(nums, reverse=True)",
  ["sort_descending([3, 1, 2]) == [3, 2, 1]", "sort_descending([]) == []", "sort_descending([0, 10, 5]) == [10, 5, 0]"])
p("product_of_list", "Write a function product_of_list(nums) that returns the product of the numbers in nums (1 for an empty list).",
  "def product_of_list(nums):\n    result = 1\n    for x in nums:\n        result *= x\n    return result",
  ["product_of_list([2, 3, 4]) == 24", "product_of_list([]) == 1", "product_of_list([5, 0]) == 0"])
p("contains_item", "Write a function contains_item(items, x) that returns True if x is in the list items.",
  "def contains_item(items, x):\n    return x in items",
  ["contains_item([1, 2, 3], 2) is True", "contains_item([], 1) is False", "contains_item(['a'], 'b') is False"])
p("max_minus_min", "Write a function max_minus_min(nums) that returns the difference between the largest and the smallest number of a non-empty list.",
  "def max_minus_min(nums):\n    return max(nums) - min(nums)",
  ["max_minus_min([1, 5, 3]) == 4", "max_minus_min([7]) == 0", "max_minus_min([-3, 3]) == 6"])
p("is_positive", "Write a function is_positive(n) that returns True if n is greater than zero.",
  "def is_positive(n):\n    return n > 0",
  ["is_positive(5) is True", "is_positive(0) is False", "is_positive(-2) is False"])
p("sign", "Write a function sign(n) that returns 1 for positive numbers, -1 for negative numbers and 0 for zero.",
  "def sign(n):\n    if n > 0:\n        return 1\n    if n < 0:\n        return -1\n    return 0",
  ["sign(10) == 1", "sign(-3) == -1", "sign(0) == 0"])
p("join_words", "Write a function join_words(words) that joins a list of strings with single spaces.",
  "def join_words(words):\n    return ' '.join(words)",
  ["join_words(['a', 'b', 'c']) == 'a b c'", "join_words([]) == ''", "join_words(['hi']) == 'hi'"])
p("capitalize_words", "Write a function capitalize_words(s) that returns s with the first letter of every space-separated word in upper case and the rest unchanged.",
  "def capitalize_words(s):\n    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))",
  ["capitalize_words('hello world') == 'Hello World'", "capitalize_words('a') == 'A'", "capitalize_words('python is fun') == 'Python Is Fun'"])
p("count_char", "Write a function count_char(s, c) that returns how many times the character c occurs in the string s.",
  "def count_char(s, c):\n    return s.count(c)",
  ["count_char('banana', 'a') == 3", "count_char('', 'a') == 0", "count_char('abc', 'z') == 0"])
p("remove_spaces", "Write a function remove_spaces(s) that returns s with every space character removed.",
  "def remove_spaces(s):\n    return s.replace(' ', '')",
  ["remove_spaces('a b c') == 'abc'", "remove_spaces('') == ''", "remove_spaces('  x  ') == 'x'"])
p("gcd", "Write a function gcd(a, b) that returns the greatest common divisor of two positive integers.",
  "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a",
  ["gcd(12, 18) == 6", "gcd(7, 5) == 1", "gcd(100, 75) == 25", "gcd(9, 9) == 9"])
p("lcm", "Write a function lcm(a, b) that returns the least common multiple of two positive integers.",
  "def lcm(a, b):\n    x, y = a, b\n    while y:\n        x, y = y, x % y\n    return a * b // x",
  ["lcm(4, 6) == 12", "lcm(3, 5) == 15", "lcm(7, 7) == 7"])
p("power", "Write a function power(base, exp) that returns base raised to the non-negative integer exp.",
  "def power(base, exp):\n    return base ** exp",
  ["power(2, 10) == 1024", "power(5, 0) == 1", "power(3, 3) == 27"])
p("is_leap_year", "Write a function is_leap_year(year) that returns True for leap years: divisible by 4, except centuries, which must be divisible by 400.",
  "def is_leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
  ["is_leap_year(2024) is True", "is_leap_year(1900) is False", "is_leap_year(2000) is True", "is_leap_year(2023) is False"])
p("second_largest", "Write a function second_largest(nums) that returns the second largest distinct value in a list with at least two distinct values.",
  "def second_largest(nums):\n    return sorted(set(nums))[-2]",
  ["second_largest([1, 3, 2]) == 2", "second_largest([5, 5, 4]) == 4", "second_largest([10, 20]) == 10"])
p("flatten", "Write a function flatten(lists) that turns a list of lists into one list with all their elements in order.",
  "def flatten(lists):\n    return [x for inner in lists for x in inner]",
  ["flatten([[1, 2], [3]]) == [1, 2, 3]", "flatten([]) == []", "flatten([[], ['a']]) == ['a']"])
p("char_frequency", "Write a function char_frequency(s) that returns a dictionary mapping each character of s to how many times it occurs.",
  "def char_frequency(s):\n    counts = {}\n    for c in s:\n        counts[c] = counts.get(c, 0) + 1\n    return counts",
  ["char_frequency('aab') == {'a': 2, 'b': 1}", "char_frequency('') == {}", "char_frequency('xyz') == {'x': 1, 'y': 1, 'z': 1}"])
p("merge_dicts", "Write a function merge_dicts(a, b) that returns a new dictionary with the entries of a and b; values from b win on equal keys.",
  "def merge_dicts(a, b):\n    out = dict(a)\n    out.update(b)\n    return out",
  ["merge_dicts({'x': 1}, {'y': 2}) == {'x': 1, 'y': 2}", "merge_dicts({'x': 1}, {'x': 3}) == {'x': 3}", "merge_dicts({}, {}) == {}"])
p("square_list", "Write a function square_list(nums) that returns a list with the square of each number of nums.",
  "def square_list(nums):\n    return [x * x for x in nums]",
  ["square_list([1, 2, 3]) == [1, 4, 9]", "square_list([]) == []", "square_list([-2]) == [4]"])
p("is_sorted", "Write a function is_sorted(nums) that returns True if the list is sorted in non-decreasing order.",
  "def is_sorted(nums):\n    return all(nums[i] <= nums[i + 1] for i in range(len(nums) - 1))",
  ["is_sorted([1, 2, 2, 3]) is True", "is_sorted([3, 1]) is False", "is_sorted([]) is True"])
p("count_positive", "Write a function count_positive(nums) that returns how many numbers in nums are greater than zero.",
  "def count_positive(nums):\n    return sum(1 for x in nums if x > 0)",
  ["count_positive([1, -2, 3, 0]) == 2", "count_positive([]) == 0", "count_positive([-1, -5]) == 0"])
p("starts_with", "Write a function starts_with(s, prefix) that returns True if the string s begins with prefix.",
  "def starts_with(s, prefix):\n    return s.startswith(prefix)",
  ["starts_with('hello', 'he') is True", "starts_with('hello', 'lo') is False", "starts_with('abc', '') is True"])
p("ends_with", "Write a function ends_with(s, suffix) that returns True if the string s ends with suffix.",
  "def ends_with(s, suffix):\n    return s.endswith(suffix)",
  ["ends_with('hello', 'lo') is True", "ends_with('hello', 'he') is False", "ends_with('abc', 'abc') is True"])
p("sum_range", "Write a function sum_range(a, b) that returns the sum of all integers from a to b inclusive (a <= b).",
  "def sum_range(a, b):\n    return sum(range(a, b + 1))",
  ["sum_range(1, 10) == 55", "sum_range(5, 5) == 5", "sum_range(-2, 2) == 0"])
p("multiply_list", "Write a function multiply_list(nums, k) that returns a list with every number of nums multiplied by k.",
  "def multiply_list(nums, k):\n    return [x * k for x in nums]",
  ["multiply_list([1, 2], 3) == [3, 6]", "multiply_list([], 5) == []", "multiply_list([4], 0) == [0]"])
p("digits_list", "Write a function digits_list(n) that returns the list of decimal digits of a non-negative integer n, most significant first.",
  "def digits_list(n):\n    return [int(d) for d in str(n)]",
  ["digits_list(123) == [1, 2, 3]", "digits_list(0) == [0]", "digits_list(907) == [9, 0, 7]"])
p("is_vowel", "Write a function is_vowel(c) that returns True if the single character c is a vowel (a, e, i, o, u, either case).",
  "def is_vowel(c):\n    return c.lower() in 'aeiou' and len(c) == 1",
  ["is_vowel('a') is True", "is_vowel('E') is True", "is_vowel('b') is False"])
p("cube", "Write a function cube(n) that returns n raised to the third power.",
  "def cube(n):\n    return n ** 3",
  ["cube(2) == 8", "cube(-3) == -27", "cube(0) == 0"])
p("halve", "Write a function halve(n) that returns n divided by 2 as a float.",
  "def halve(n):\n    return n / 2",
  ["halve(4) == 2.0", "halve(5) == 2.5", "halve(0) == 0.0"])
p("min_max", "Write a function min_max(nums) that returns a tuple (smallest, largest) of a non-empty list.",
  "def min_max(nums):\n    return (min(nums), max(nums))",
  ["min_max([3, 1, 2]) == (1, 3)", "min_max([4]) == (4, 4)", "min_max([-1, 10]) == (-1, 10)"])
p("swap_pair", "Write a function swap_pair(pair) that takes a tuple (a, b) and returns (b, a).",
  "def swap_pair(pair):\n    a, b = pair\n    return (b, a)",
  ["swap_pair((1, 2)) == (2, 1)", "swap_pair(('x', 'y')) == ('y', 'x')", "swap_pair((0, 0)) == (0, 0)"])
p("remove_duplicates_sorted", "Write a function remove_duplicates_sorted(nums) that returns the distinct values of nums sorted in ascending order.",
  "def remove_duplicates_sorted(nums):\n    return sorted(set(nums))",
  ["remove_duplicates_sorted([3, 1, 3, 2]) == [1, 2, 3]", "remove_duplicates_sorted([]) == []", "remove_duplicates_sorted([5, 5]) == [5]"])
p("count_upper", "Write a function count_upper(s) that returns the number of upper-case letters in s.",
  "def count_upper(s):\n    return sum(1 for c in s if c.isupper())",
  ["count_upper('Hello World') == 2", "count_upper('abc') == 0", "count_upper('ABC') == 3"])
p("nth_element", "Write a function nth_element(items, n) that returns the element at index n of items, or None if n is out of range.",
  "def nth_element(items, n):\n    if 0 <= n < len(items):\n        return items[n]\n    return None",
  ["nth_element([1, 2, 3], 1) == 2", "nth_element([1, 2, 3], 5) is None", "nth_element([], 0) is None"])
p("sum_even", "Write a function sum_even(nums) that returns the sum of the even numbers in nums.",
  "def sum_even(nums):\n    return sum(x for x in nums if x % 2 == 0)",
  ["sum_even([1, 2, 3, 4]) == 6", "sum_even([]) == 0", "sum_even([1, 3, 5]) == 0"])
p("sum_odd", "Write a function sum_odd(nums) that returns the sum of the odd numbers in nums.",
  "def sum_odd(nums):\n    return sum(x for x in nums if x % 2 != 0)",
  ["sum_odd([1, 2, 3, 4]) == 4", "sum_odd([]) == 0", "sum_odd([2, 4]) == 0"])
p("longest_word", "Write a function longest_word(words) that returns the longest string in a non-empty list (the first one on ties).",
  "def longest_word(words):\n    best = words[0]\n    for w in words[1:]:\n        if len(w) > len(best):\n            best = w\n    return best",
  ["longest_word(['a', 'abc', 'ab']) == 'abc'", "longest_word(['x']) == 'x'", "longest_word(['ab', 'cd']) == 'ab'"])
p("shortest_word", "Write a function shortest_word(words) that returns the shortest string in a non-empty list (the first one on ties).",
  "def shortest_word(words):\n    best = words[0]\n    for w in words[1:]:\n        if len(w) < len(best):\n            best = w\n    return best",
  ["shortest_word(['abc', 'a', 'ab']) == 'a'", "shortest_word(['x']) == 'x'", "shortest_word(['ab', 'cd']) == 'ab'"])
p("range_list", "Write a function range_list(n) that returns the list [0, 1, ..., n - 1].",
  "def range_list(n):\n    return list(range(n))",
  ["range_list(3) == [0, 1, 2]", "range_list(0) == []", "range_list(1) == [0]"])
p("triangle_area", "Write a function triangle_area(base, height) that returns the area of a triangle: base * height / 2.",
  "def triangle_area(base, height):\n    return base * height / 2",
  ["triangle_area(4, 3) == 6", "triangle_area(0, 5) == 0", "triangle_area(5, 5) == 12.5"])
p("rectangle_perimeter", "Write a function rectangle_perimeter(w, h) that returns the perimeter of a rectangle with sides w and h.",
  "def rectangle_perimeter(w, h):\n    return 2 * (w + h)",
  ["rectangle_perimeter(2, 3) == 10", "rectangle_perimeter(0, 0) == 0", "rectangle_perimeter(5, 1) == 12"])
p("is_divisible", "Write a function is_divisible(a, b) that returns True if the integer a is divisible by the non-zero integer b.",
  "def is_divisible(a, b):\n    return a % b == 0",
  ["is_divisible(10, 5) is True", "is_divisible(10, 3) is False", "is_divisible(0, 7) is True"])
p("list_length", "Write a function list_length(items) that returns the number of elements in items.",
  "def list_length(items):\n    return len(items)",
  ["list_length([1, 2, 3]) == 3", "list_length([]) == 0", "list_length(['a']) == 1"])
p("negate_list", "Write a function negate_list(nums) that returns a list with the negation of each number of nums.",
  "def negate_list(nums):\n    return [-x for x in nums]",
  ["negate_list([1, -2]) == [-1, 2]", "negate_list([]) == []", "negate_list([0]) == [0]"])
p("to_lower", "Write a function to_lower(s) that returns the string s in lower case.",
  "def to_lower(s):\n    return s.lower()",
  ["to_lower('ABC') == 'abc'", "to_lower('Hello') == 'hello'", "to_lower('') == ''"])
p("index_of", "Write a function index_of(items, x) that returns the index of the first occurrence of x in items, or -1 when x is absent.",
  "def index_of(items, x):\n    for i, v in enumerate(items):\n        if v == x:\n            return i\n    return -1",
  ["index_of([4, 5, 6], 5) == 1", "index_of([4, 5, 6], 7) == -1", "index_of([1, 1], 1) == 0"])
p("clamp", "Write a function clamp(x, low, high) that returns x limited to the range [low, high].",
  "def clamp(x, low, high):\n    return max(low, min(x, high))",
  ["clamp(5, 0, 10) == 5", "clamp(-3, 0, 10) == 0", "clamp(42, 0, 10) == 10"])
