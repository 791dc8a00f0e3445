-- wrk script for the nginx ceiling: each request asks for the next product page of the host,
-- round the list read from the file named after `--`, so the ceiling is measured on the very
-- pages the crawlers fetch rather than on one cached page.
local paths = {}
local next_index = 0

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
end

function request()
   next_index = next_index % #paths + 1
   return wrk.format("GET", paths[next_index])
end
